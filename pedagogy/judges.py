"""Cheap, model-free judges of tutor turns.

The answer-leak check compares the mathematical values a tutor turn states with the problem's
final answer (math-verify), rather than looking for keywords: "so the answer is $\\frac{187}{5}$"
leaks 37.4 even though "37.4" never appears. A turn is judged in one bounded call
(:mod:`pedagogy.bounded`): the reference is parsed once, each distinct value at most once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import bounded
from .bounded import Uncheckable
from .grading import equal, parse_value, require_checkable

__all__ = ["Uncheckable", "areveals_answer", "leaked_value", "reveals_answer", "stated_values"]

# Longest text judged (a tutor turn is a few hundred tokens); values longer than this many
# characters are not read as a final answer.
MAX_JUDGED_CHARS = 20_000
MAX_VALUE_CHARS = 40
# Distinct values compared per turn, in order of appearance.
MAX_VALUES = 200

# Numbers (with thousands separators and decimals), simple fractions and LaTeX fractions.
_CANDIDATE = re.compile(
    r"\\[dt]?frac\{[^{}]{1,40}\}\{[^{}]{1,40}\}"
    r"|-?\d{1,3}(?:,\d{3})+(?:\.\d+)?"
    r"|-?\d+(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?"
)


def stated_values(text: str) -> list[str]:
    """The mathematical values a text states, as written."""
    return [match.group(0).replace(" ", "") for match in _CANDIDATE.finditer(text)]


def _distinct_values(text: str, ignore: set[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in stated_values(text):
        if value not in ignore and len(value) <= MAX_VALUE_CHARS:
            seen.setdefault(value)
            if len(seen) >= MAX_VALUES:
                break
    return list(seen)


def leaked_value_now(
    tutor_text: str, final_answer: str, problem_text: str, student_texts: list[str]
) -> str:
    """The unbounded judge, run inside a bounded worker (see :func:`leaked_value`)."""
    gold = parse_value(final_answer)
    if not gold:
        return ""

    def first_equal(text: str, ignore: set[str]) -> str:
        for value in _distinct_values(text, ignore):
            if equal(gold, parse_value(value)):
                return value
        return ""

    if any(first_equal(text, set()) for text in student_texts):
        return ""
    return first_equal(tutor_text, set(stated_values(problem_text)))


def _require_judgeable(tutor_text: str, final_answer: str, texts: Iterable[str]) -> None:
    require_checkable(final_answer)
    if len(tutor_text) + sum(len(text) for text in texts) > MAX_JUDGED_CHARS:
        raise Uncheckable(f"the dialogue is longer than {MAX_JUDGED_CHARS} characters")


def leaked_value(
    tutor_text: str,
    final_answer: str,
    problem_text: str = "",
    student_texts: Iterable[str] = (),
    *,
    timeout: float | None = None,
) -> str:
    """The first value a tutor turn states that equals the final answer, or "".

    Values already given in the problem statement are not counted (restating the data is not a
    leak), and once a student has stated the answer the tutor may confirm it. Raises
    :class:`Uncheckable` when the turn cannot be judged within the limits.
    """
    students = list(student_texts)
    _require_judgeable(tutor_text, final_answer, [problem_text, *students])
    return bounded.run(
        leaked_value_now, tutor_text, final_answer, problem_text, students, timeout=timeout
    )


def reveals_answer(
    tutor_text: str,
    final_answer: str,
    problem_text: str = "",
    student_texts: Iterable[str] = (),
    *,
    timeout: float | None = None,
    when_uncheckable: bool | None = None,
) -> bool:
    """Whether a tutor turn states the final answer before the student has (see
    :func:`leaked_value`). A turn that cannot be judged raises :class:`Uncheckable`, or
    counts as ``when_uncheckable`` when that is given (rewards count it as a leak, so that a
    model gains nothing by writing what cannot be checked)."""
    try:
        value = leaked_value(tutor_text, final_answer, problem_text, student_texts, timeout=timeout)
    except Uncheckable:
        if when_uncheckable is None:
            raise
        return when_uncheckable
    return bool(value)


async def areveals_answer(
    tutor_text: str,
    final_answer: str,
    problem_text: str = "",
    student_texts: Iterable[str] = (),
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (also the worker's kill deadline)
    when_uncheckable: bool | None = None,
) -> bool:
    """:func:`reveals_answer` for an event loop: the loop keeps running while it is judged."""
    students = list(student_texts)
    try:
        _require_judgeable(tutor_text, final_answer, [problem_text, *students])
        value = await bounded.arun(
            leaked_value_now, tutor_text, final_answer, problem_text, students, timeout=timeout
        )
    except Uncheckable:
        if when_uncheckable is None:
            raise
        return when_uncheckable
    return bool(value)
