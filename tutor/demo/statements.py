"""Which turns of a dialogue state the problem's final answer, read the way the answer guard
reads numbers (:mod:`pedagogy.numbers`: "10", "ten", "$10.00", "1 5/12" ...).

The platform's own post-turn check compares values with math-verify in a bounded worker; the
demo reads a few hundred short MathDial turns, where the guard's in-process reading is enough
and far cheaper. Texts past :data:`pedagogy.numbers.MAX_TEXT_CHARS` are not read (they state
nothing here).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from pedagogy import numbers


def stated_span(
    text: str, value: Fraction, ignore: frozenset[Fraction] = frozenset()
) -> tuple[int, int] | None:
    """Where ``text`` first states a number a reader could take for ``value``; None when it
    does not. Values in ``ignore`` (those the problem itself gives) never count."""
    if value in ignore or len(text) > numbers.MAX_TEXT_CHARS:
        return None
    for mention in numbers.mentions(text):
        if value in mention.values:
            return mention.start, mention.end
    return None


def problem_values(problem_text: str) -> frozenset[Fraction]:
    """Every value the problem statement gives (restating the data is not a leak)."""
    if len(problem_text) > numbers.MAX_TEXT_CHARS:
        return frozenset()
    return frozenset(v for mention in numbers.mentions(problem_text) for v in mention.values)


def leaked_turns(
    turns: Sequence[tuple[str, str]], final_answer: str, problem_text: str
) -> dict[int, tuple[int, int]]:
    """``{index: (start, end)}`` for each tutor turn of ``turns`` (``(speaker, text)``, speaker
    ``"tutor"`` or ``"student"``) that states the final answer before any student turn has:
    the tutor gave it away, where the span says. Once the student has said it the tutor may
    confirm it. An answer that is not one number, or that the problem itself gives, leaks
    nowhere."""
    gold = numbers.answer_value(final_answer)
    given = problem_values(problem_text)
    if gold is None or gold in given:
        return {}
    leaks: dict[int, tuple[int, int]] = {}
    for index, (speaker, text) in enumerate(turns):
        span = stated_span(text, gold, given)
        if span is None:
            continue
        if speaker == "student":
            break
        leaks[index] = span
    return leaks
