"""The entry point: :func:`seed_demo_classroom` creates the demo class once.

Idempotent by a natural key: the demo teacher's class named :data:`DEMO_CLASS_NAME`. When it
exists nothing changes; otherwise the whole history is written in one transaction, with the
teacher's row locked so that two seeds at once cannot both create it.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from tutor.accounts.models import Role, User
from tutor.classes.models import Classroom

from .people import DemoStudent, demo_account, simulated_students
from .plan import ASSIGNMENTS, PROBLEMS_PER_ASSIGNMENT, plan_history
from .source import choose_problems, load_candidates
from .store import DemoSeedError, StoredCounts, write_plan

DEMO_CLASS_NAME = "Grade 7 maths (demo)"
DEMO_TEACHER = "teacher"
#: The demo logins in the class, with how often they get there.
DEMO_STUDENTS: tuple[tuple[str, float], ...] = (("student", 0.7), ("student2", 0.45))
SIMULATED_STUDENTS = 20
SEED = 15

__all__ = ["DEMO_CLASS_NAME", "DemoSeedError", "SeedResult", "seed_demo_classroom"]


@dataclass
class SeedResult:
    classroom: Classroom
    created: bool
    counts: StoredCounts = field(default_factory=StoredCounts)

    def __str__(self) -> str:
        if not self.created:
            return f"exists   {self.classroom.name} (class {self.classroom.pk}): nothing changed"
        return f"created  {self.classroom.name} (class {self.classroom.pk}): {self.counts}"


def _logins(usernames: tuple[tuple[str, float], ...]) -> list[DemoStudent]:
    users = {u.username: u for u in User.objects.filter(username__in=[n for n, _ in usernames])}
    accounts = []
    for username, ability in usernames:
        user = users.get(username)
        if user is None:
            raise DemoSeedError(f"no account {username!r}: run seed_demo first")
        first = user.first_name or username
        accounts.append(demo_account(username, first, user.last_name, ability))
    return accounts


def seed_demo_classroom(
    *,
    teacher: str = DEMO_TEACHER,
    students: tuple[tuple[str, float], ...] = DEMO_STUDENTS,
    simulated: int = SIMULATED_STUDENTS,
    seed: int = SEED,
    now: dt.datetime | None = None,
    mathdial: Path | None = None,
) -> SeedResult:
    """The demo class of ``teacher`` with ``students`` (existing logins) and ``simulated`` more,
    and about three weeks of history up to ``now``, drawn from ``seed``; nothing is written
    when the class exists. Raises :class:`DemoSeedError` when an account is missing, and
    ``FileNotFoundError`` when the MathDial file is."""
    now = now or timezone.now()
    with transaction.atomic():
        owner = User.objects.select_for_update().filter(username=teacher).first()
        if owner is None or owner.role != Role.TEACHER:
            raise DemoSeedError(f"no teacher account {teacher!r}: run seed_demo first")
        existing = Classroom.objects.filter(teacher=owner, name=DEMO_CLASS_NAME).first()
        if existing is not None:
            return SeedResult(existing, created=False)
        rng = random.Random(seed)
        count = len(ASSIGNMENTS) * PROBLEMS_PER_ASSIGNMENT
        problems = choose_problems(load_candidates(mathdial), count, rng)
        roster = _logins(students) + simulated_students(rng, simulated)
        plan = plan_history(roster, problems, now, rng)
        classroom, counts = write_plan(plan, owner, problems, DEMO_CLASS_NAME)
    return SeedResult(classroom, created=True, counts=counts)
