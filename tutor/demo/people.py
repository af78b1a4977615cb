"""The demo class's simulated students: plausible names from a fixed list, and the traits that
make their histories differ (how often they work, how often they get there)."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

#: First and last names of the simulated students, in the order they are created.
NAMES: tuple[tuple[str, str], ...] = (
    ("Priya", "Shah"),
    ("Mateo", "García"),
    ("Amara", "Okafor"),
    ("Liam", "O'Brien"),
    ("Yuki", "Tanaka"),
    ("Noah", "Schmidt"),
    ("Fatima", "Haddad"),
    ("Ethan", "Nguyen"),
    ("Sofia", "Rossi"),
    ("Kwame", "Mensah"),
    ("Chloe", "Martin"),
    ("Arjun", "Patel"),
    ("Isabel", "Costa"),
    ("Lucas", "Weber"),
    ("Zara", "Ahmed"),
    ("Oliver", "Johansson"),
    ("Mei", "Chen"),
    ("Diego", "Fernández"),
    ("Hannah", "Kowalski"),
    ("Samuel", "Adeyemi"),
    ("Leila", "Karimi"),
    ("Tom", "Novak"),
)

#: Simulated students' usernames start with this, so that nobody mistakes them for real ones.
USERNAME_PREFIX = "demo-"


@dataclass(frozen=True)
class DemoStudent:
    """A student of the demo class and how their history is drawn.

    ``ability``: the chance of solving a problem they work on; ``diligence``: the chance of
    working on an assigned problem at all.
    """

    username: str
    first_name: str
    last_name: str
    ability: float
    diligence: float
    simulated: bool = True


def username_for(first: str, last: str) -> str:
    """``demo-`` and the name in ASCII letters: ``demo-mateo-garcia``."""
    plain = unicodedata.normalize("NFKD", f"{first}-{last}").encode("ascii", "ignore").decode()
    return USERNAME_PREFIX + "".join(c for c in plain.lower() if c.isalnum() or c == "-")


def simulated_students(rng: random.Random, count: int) -> list[DemoStudent]:
    """``count`` simulated students (at most ``len(NAMES)``), with traits drawn from ``rng``:
    a spread from the struggling to the strong, most of them doing most of the work."""
    if not 0 <= count <= len(NAMES):
        raise ValueError(f"between 0 and {len(NAMES)} simulated students")
    students = []
    for first, last in NAMES[:count]:
        students.append(
            DemoStudent(
                username=username_for(first, last),
                first_name=first,
                last_name=last,
                ability=round(rng.uniform(0.2, 0.95), 2),
                diligence=round(rng.uniform(0.45, 1.0), 2),
            )
        )
    return students


def demo_account(username: str, first: str, last: str, ability: float) -> DemoStudent:
    """A demo login (``student``, ``student2``) in the class: always diligent, so that logging
    in as them shows a history."""
    return DemoStudent(username, first, last, ability=ability, diligence=0.9, simulated=False)
