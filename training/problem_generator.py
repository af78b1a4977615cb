"""Seeded one- and two-step word problems with verified answers, for calibration and training.

The bank and MathDial hold few problems that the default simulated student solves sometimes but
not always (see :mod:`training.calibration`); templated problems give as many as needed, at
the difficulty the student can reach. Each template draws its numbers from a random generator
seeded by the template's name and the problem's seed, so ``generate_problem("unit_rate", 7)``
is the same problem on every machine, and its id is ``gen:unit_rate:7``.

Every answer is computed exactly (:class:`fractions.Fraction`), and a problem is only handed
out after three checks: the rendered answer, re-read by :mod:`pedagogy.grading`'s checker,
equals the exact value; the worked solution states no false arithmetic
(:func:`pedagogy.arithmetic.false_claims`); and its last line states the answer. Numbers are
chosen backwards where needed (the quotient first, then the dividend), so that counts of
things come out whole and money comes out in cents.

The held-out split is a hash of the id, like :func:`training.dataset.is_heldout` (with its
default share it is the same rule), so it does not depend on how many problems were generated
or in which order.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pedagogy.arithmetic import false_claims
from pedagogy.grading import check_plain
from training.calculator import format_value
from training.dataset import HELDOUT_FRACTION, problem_to_dict
from training.rollout import RolloutProblem

__all__ = [
    "TEMPLATES",
    "GeneratedProblem",
    "GenerationError",
    "format_value",
    "generate_problem",
    "generate_problems",
    "is_heldout",
    "write_problems",
]

ID_PREFIX = "gen"


class GenerationError(ValueError):
    """A template produced a problem whose answer did not verify (a bug in the template)."""


@dataclass(frozen=True)
class GeneratedProblem:
    problem_id: str
    template: str
    seed: int
    text: str
    final_answer: str  # rendered: "98", "10.75", "2/3"
    value: Fraction  # the exact answer
    solution: str
    skills: tuple[str, ...]
    difficulty: int  # 1 (one small step) to 4 (two steps with decimals or fractions)
    steps: int
    heldout: bool

    @property
    def category(self) -> str:
        """The curriculum arm: the template's first skill."""
        return self.skills[0]

    def rollout_problem(self) -> RolloutProblem:
        return RolloutProblem(
            problem_id=self.problem_id,
            text=self.text,
            final_answer=self.final_answer,
            solution=self.solution,
            category=self.category,
        )

    def to_dict(self) -> dict[str, Any]:
        """A ``training.dataset`` problem line, with the generator's fields beside it (the
        dataset reader ignores them)."""
        data = problem_to_dict(self.rollout_problem())
        data.update(
            template=self.template,
            seed=self.seed,
            skills=list(self.skills),
            difficulty=self.difficulty,
            steps=self.steps,
            heldout=self.heldout,
            source="generated",
        )
        return data


def is_heldout(problem_id: str, fraction: float = HELDOUT_FRACTION) -> bool:
    """Whether a problem id falls in the held-out share ``fraction``: the hash rule of
    :func:`training.dataset.is_heldout` (identical to it at the default share)."""
    digest = hashlib.sha256(f"heldout:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def _money(value: Fraction) -> str:
    """Dollars with cents: "$7.45", "$20.00"."""
    cents = value * 100
    if cents.denominator != 1:
        raise GenerationError(f"{value} is not a whole number of cents")
    whole, rest = divmod(cents.numerator, 100)
    return f"${whole}.{rest:02d}"


def _cents(rng: random.Random, low: int, high: int) -> Fraction:
    """A price between ``low`` and ``high`` cents, in dollars."""
    return Fraction(rng.randint(low, high), 100)


# ---- templates ----------------------------------------------------------------------------------
# Each returns (text, exact answer, worked solution, unit word for the last line). Names and
# objects vary so that problems of one template do not read alike.

NAMES = (
    "Maya", "Leo", "Ava", "Noah", "Zara", "Omar", "Lily", "Ben", "Sofia", "Ravi", "Emma",
    "Kofi", "Hana", "Diego", "Nina", "Sam",
)  # fmt: skip

_Spec = tuple[str, Fraction, str, str]


def _add(rng: random.Random) -> _Spec:
    name = rng.choice(NAMES)
    thing = rng.choice(("stickers", "marbles", "stamps", "shells", "cards"))
    a, b = rng.randint(12, 85), rng.randint(11, 69)
    text = f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have now?"
    return text, Fraction(a + b), f"{a} + {b} = {a + b}", thing


def _subtract(rng: random.Random) -> _Spec:
    place = rng.choice(("library", "school", "shop"))
    thing = {"library": "books", "school": "chairs", "shop": "toys"}[place]
    b = rng.randint(15, 80)
    a = b + rng.randint(12, 90)
    verb = {"library": "lends out", "school": "moves", "shop": "sells"}[place]
    text = f"A {place} has {a} {thing}. It {verb} {b} of them. How many {thing} are left?"
    return text, Fraction(a - b), f"{a} - {b} = {a - b}", thing


def _multiply(rng: random.Random) -> _Spec:
    box = rng.choice(("boxes", "bags", "packs", "crates"))
    thing = rng.choice(("pencils", "apples", "crayons", "cookies"))
    a, b = rng.randint(3, 9), rng.randint(6, 25)
    text = f"There are {a} {box} with {b} {thing} in each. How many {thing} are there in all?"
    return text, Fraction(a * b), f"{a} * {b} = {a * b}", thing


def _divide(rng: random.Random) -> _Spec:
    name = rng.choice(NAMES)
    thing = rng.choice(("cookies", "stickers", "grapes", "beads"))
    people = rng.randint(3, 9)
    each = rng.randint(4, 16)
    total = people * each
    text = (
        f"{name} shares {total} {thing} equally among {people} friends. "
        f"How many {thing} does each friend get?"
    )
    return text, Fraction(each), f"{total} / {people} = {each}", thing


def _fraction_of(rng: random.Random) -> _Spec:
    denominator = rng.choice((2, 3, 4, 5, 8, 10))
    numerator = rng.randint(1, denominator - 1)
    while Fraction(numerator, denominator).denominator != denominator:
        numerator = rng.randint(1, denominator - 1)
    group = rng.randint(3, 12) * denominator
    part = Fraction(numerator, denominator) * group
    activity = rng.choice(("walk to school", "play a sport", "have a pet", "wear glasses"))
    text = (
        f"A class has {group} students. {numerator}/{denominator} of them {activity}. "
        f"How many students {activity}?"
    )
    solution = f"{group} / {denominator} = {group // denominator}, and "
    solution += f"{group // denominator} * {numerator} = {part}"
    return text, part, solution, "students"


def _fraction_left(rng: random.Random) -> _Spec:
    denominator = rng.choice((3, 4, 5, 6))
    numerator = 1
    length = rng.randint(2, 9) * denominator
    cut = length // denominator
    text = (
        f"A rope is {length} meters long. {numerator}/{denominator} of it is cut off. "
        f"How many meters of rope are left?"
    )
    solution = f"{length} / {denominator} = {cut}, and {length} - {cut} = {length - cut}"
    return text, Fraction(length - cut), solution, "meters"


def _money_total(rng: random.Random) -> _Spec:
    name = rng.choice(NAMES)
    item = rng.choice(("notebooks", "pens", "juice boxes", "erasers"))
    count = rng.randint(2, 6)
    price = _cents(rng, 105, 495)
    total = count * price
    text = f"{name} buys {count} {item} at {_money(price)} each. How many dollars does {name} pay?"
    solution = f"{count} * {format_value(price)} = {format_value(total)}"
    return text, total, solution, "dollars"


def _money_change(rng: random.Random) -> _Spec:
    name = rng.choice(NAMES)
    first, second = _cents(rng, 250, 950), _cents(rng, 105, 495)
    paid = Fraction(20 if first + second < 20 else 50)
    change = paid - first - second
    text = (
        f"{name} buys a book for {_money(first)} and a pen for {_money(second)}, and pays "
        f"with a ${paid} bill. How many dollars of change does {name} get?"
    )
    spent = first + second
    solution = (
        f"{format_value(first)} + {format_value(second)} = {format_value(spent)}, and "
        f"{paid} - {format_value(spent)} = {format_value(change)}"
    )
    return text, change, solution, "dollars"


def _unit_price(rng: random.Random) -> _Spec:
    count = rng.randint(2, 8)
    price = _cents(rng, 25, 180)
    total = count * price
    fruit = rng.choice(("apples", "oranges", "pears", "lemons"))
    text = f"{count} {fruit} cost {_money(total)}. How many dollars does one of them cost?"
    solution = f"{format_value(total)} / {count} = {format_value(price)}"
    return text, price, solution, "dollars"


def _unit_rate(rng: random.Random) -> _Spec:
    hours = rng.randint(2, 5)
    speed = rng.randint(4, 15) * 5
    later = rng.choice([h for h in range(2, 9) if h != hours])
    distance = hours * speed
    text = (
        f"A car drives {distance} miles in {hours} hours at a steady speed. "
        f"How many miles does it drive in {later} hours?"
    )
    solution = f"{distance} / {hours} = {speed}, and {speed} * {later} = {speed * later}"
    return text, Fraction(speed * later), solution, "miles"


def _groups_then_sell(rng: random.Random) -> _Spec:
    trays, per_tray = rng.randint(3, 8), rng.randint(6, 12)
    made = trays * per_tray
    sold = rng.randint(5, made - 3)
    text = (
        f"A baker makes {trays} trays of muffins with {per_tray} muffins on each tray, and "
        f"sells {sold} muffins. How many muffins are left?"
    )
    solution = f"{trays} * {per_tray} = {made}, and {made} - {sold} = {made - sold}"
    return text, Fraction(made - sold), solution, "muffins"


def _give_then_buy(rng: random.Random) -> _Spec:
    name = rng.choice(NAMES)
    start = rng.randint(20, 60)
    given = rng.randint(5, start - 5)
    bags, per_bag = rng.randint(2, 5), rng.randint(3, 10)
    bought = bags * per_bag
    left = start - given
    text = (
        f"{name} has {start} marbles, gives {given} to a friend, and then buys {bags} bags "
        f"with {per_bag} marbles in each. How many marbles does {name} have now?"
    )
    solution = (
        f"{start} - {given} = {left}, {bags} * {per_bag} = {bought}, and "
        f"{left} + {bought} = {left + bought}"
    )
    return text, Fraction(left + bought), solution, "marbles"


def _add_then_share(rng: random.Random) -> _Spec:
    teams = rng.randint(2, 6)
    each = rng.randint(3, 12)
    total = teams * each
    red = rng.randint(1, total - 1)
    text = (
        f"A coach has {red} red balls and {total - red} blue balls, and splits all of them "
        f"equally among {teams} teams. How many balls does each team get?"
    )
    solution = f"{red} + {total - red} = {total}, and {total} / {teams} = {each}"
    return text, Fraction(each), solution, "balls"


TEMPLATES: dict[str, tuple[Callable[[random.Random], _Spec], tuple[str, ...], int, int]] = {
    # name: (template, skills, difficulty, steps)
    "add": (_add, ("addition",), 1, 1),
    "subtract": (_subtract, ("subtraction",), 1, 1),
    "multiply": (_multiply, ("multiplication",), 1, 1),
    "divide": (_divide, ("division",), 1, 1),
    "fraction_of": (_fraction_of, ("fractions", "multiplication"), 2, 2),
    "fraction_left": (_fraction_left, ("fractions", "subtraction"), 3, 2),
    "money_total": (_money_total, ("money", "decimals", "multiplication"), 2, 1),
    "money_change": (_money_change, ("money", "decimals", "subtraction"), 3, 2),
    "unit_price": (_unit_price, ("unit rates", "money", "division"), 2, 1),
    "unit_rate": (_unit_rate, ("unit rates", "division", "multiplication"), 3, 2),
    "groups_then_sell": (_groups_then_sell, ("two-step", "multiplication", "subtraction"), 2, 2),
    "give_then_buy": (_give_then_buy, ("two-step", "multiplication", "addition"), 3, 3),
    "add_then_share": (_add_then_share, ("two-step", "addition", "division"), 2, 2),
}


def _verify(problem_id: str, answer: str, value: Fraction, solution: str) -> None:
    check = check_plain(answer, str(value))
    if check is None or not check.correct:
        raise GenerationError(f"{problem_id}: the answer {answer!r} does not read as {value}")
    wrong = false_claims(solution, final=True)
    if wrong:
        raise GenerationError(f"{problem_id}: the solution is wrong: {wrong[0].describe()}")
    if not solution.rstrip().endswith(f"Final answer: {answer}"):
        raise GenerationError(f"{problem_id}: the solution does not end with its answer")


def generate_problem(
    template: str, seed: int, *, heldout_fraction: float = HELDOUT_FRACTION
) -> GeneratedProblem:
    """Problem number ``seed`` of ``template``; the same on every machine."""
    try:
        make, skills, difficulty, steps = TEMPLATES[template]
    except KeyError:
        raise ValueError(f"unknown template {template!r}; choose from {list(TEMPLATES)}") from None
    rng = random.Random(f"{ID_PREFIX}:{template}:{seed}")
    text, value, work, unit = make(rng)
    answer = format_value(value)
    solution = f"{work}. The answer is {answer} {unit}.\nFinal answer: {answer}"
    problem_id = f"{ID_PREFIX}:{template}:{seed}"
    _verify(problem_id, answer, value, solution)
    return GeneratedProblem(
        problem_id=problem_id,
        template=template,
        seed=seed,
        text=text,
        final_answer=answer,
        value=value,
        solution=solution,
        skills=skills,
        difficulty=difficulty,
        steps=steps,
        heldout=is_heldout(problem_id, heldout_fraction),
    )


def generate_problems(
    n: int,
    *,
    seed: int = 0,
    templates: Sequence[str] | None = None,
    split: str = "all",
    heldout_fraction: float = HELDOUT_FRACTION,
) -> list[GeneratedProblem]:
    """``n`` distinct problems, the templates taken in turn, from problem seeds ``seed``,
    ``seed + 1``, ...; ``split`` keeps only ``"train"`` or ``"heldout"`` ones (``"all"``:
    both). The same arguments give the same list."""
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be train, heldout or all, not {split!r}")
    names = list(templates or TEMPLATES)
    if not names:
        raise ValueError("no template to generate from")
    out: list[GeneratedProblem] = []
    texts: set[str] = set()
    index = 0
    # Small templates run out of distinct problems; stop rather than loop for ever.
    limit = seed + 50 * max(n, 1) + 1000
    while len(out) < n:
        problem_seed = seed + index // len(names)
        if problem_seed > limit:
            break
        problem = generate_problem(
            names[index % len(names)], problem_seed, heldout_fraction=heldout_fraction
        )
        index += 1
        if split != "all" and problem.heldout != (split == "heldout"):
            continue
        if problem.text in texts:
            continue
        texts.add(problem.text)
        out.append(problem)
    return out


def write_problems(path: str | Path, problems: Iterable[GeneratedProblem]) -> int:
    """Write problems as ``training.dataset`` problem lines; returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for problem in problems:
            handle.write(json.dumps(problem.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count
