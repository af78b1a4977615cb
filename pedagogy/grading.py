"""Checking a student's final answer against a reference answer with math-verify.

Equivalent forms count as equal (37.4, 37.40, 187/5, $\\frac{187}{5}$). Every check is bounded:
answers past a size limit, or with more powers or factorials than a school answer needs, are
refused before parsing; two plain numbers or fractions (most answers) are compared exactly in
the calling process, in microseconds; the rest run in a worker process with a hard time limit
(:mod:`pedagogy.bounded`), so that a costly answer never queues the plain ones behind it.
``check_answer`` and ``acheck_answer`` raise :class:`~pedagogy.bounded.Uncheckable` when an
answer cannot be checked; ``check_answer_now`` is the unbounded check that the workers run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from . import bounded
from .bounded import Uncheckable

# math-verify's own timeouts use SIGALRM; the worker's hard limit replaces them, and it warns
# on every call that they are off.
logging.getLogger("math_verify").setLevel(logging.ERROR)

__all__ = [
    "AnswerCheck",
    "Uncheckable",
    "acheck_answer",
    "ais_correct",
    "check_answer",
    "check_answer_now",
    "check_plain",
    "is_correct",
    "is_plain",
]

# Longest answer or reference that is parsed at all.
MAX_EXPRESSION_CHARS = 300
# Powers and factorials are where a few characters cost minutes (9^9^9, 99!!!).
MAX_POWERS = 3
MAX_FACTORIALS = 2

_EXTRACTION = [ExprExtractionConfig(), LatexExtractionConfig()]
_UNITS_AND_NOISE = re.compile(r"[$€£¥%]|\\%|\\\$|,(?=\d{3}\b)")
_POWER = re.compile(r"\^|\*\*")
# A plain number or fraction, as most answers and references are (after _prepare).
_PLAIN = re.compile(r"-?\d{1,15}(?:\.\d{1,15})?(?:/\d{1,15})?")
# math-verify compares numbers rounded to 6 decimal places: two values further apart than this
# can never round to the same, and values exactly equal always do.
_SURELY_DIFFERENT = Fraction(2, 10**6)


@dataclass(frozen=True)
class AnswerCheck:
    correct: bool
    parsed: str
    reference: str


def require_checkable(text: str) -> None:
    """Refuse, before any parsing, what no school answer needs and what would cost too much."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise Uncheckable(f"it is longer than {MAX_EXPRESSION_CHARS} characters")
    if len(_POWER.findall(text)) > MAX_POWERS:
        raise Uncheckable(f"it has more than {MAX_POWERS} powers")
    if text.count("!") > MAX_FACTORIALS:
        raise Uncheckable(f"it has more than {MAX_FACTORIALS} factorials")


def _prepare(text: str) -> str:
    """Normalise what students type: thousands separators, currency and percent signs."""
    text = text.strip()
    if text.startswith("$") and text.endswith("$") and len(text) > 2 and "\\" in text:
        return text  # LaTeX math, keep as is
    text = _UNITS_AND_NOISE.sub("", text).strip()
    return text


def parse_value(text: str) -> list:
    """math-verify's parse of ``text`` (empty when nothing could be read). Unbounded."""
    prepared = _prepare(text)
    parsed = parse(prepared, extraction_config=_EXTRACTION, parsing_timeout=None)
    if not parsed and prepared:
        parsed = parse(f"${prepared}$", extraction_config=_EXTRACTION, parsing_timeout=None)
    return parsed


def equal(gold: list, answer: list) -> bool:
    """Whether two parsed values are mathematically equal. Unbounded."""
    return bool(gold and answer) and bool(verify(gold, answer, timeout_seconds=None))


def _plain_value(text: str) -> Fraction | None:
    prepared = _prepare(text)
    if _PLAIN.fullmatch(prepared) is None:
        return None
    numerator, _, denominator = prepared.partition("/")
    if denominator and int(denominator) == 0:
        return None
    return Fraction(numerator) / Fraction(denominator or 1)


def is_plain(text: str) -> bool:
    """Whether ``text`` is a plain number or fraction (checked without the process pool)."""
    return _plain_value(text) is not None


def check_plain(submitted: str, reference: str) -> AnswerCheck | None:
    """The verdict for two plain numbers or fractions, in microseconds and in this process;
    None when either is more than that, or when they are so close that only math-verify's own
    rounding can tell (then the bounded check decides)."""
    answer, gold = _plain_value(submitted), _plain_value(reference)
    if answer is None or gold is None:
        return None
    if answer == gold:
        correct = True
    elif abs(answer - gold) > _SURELY_DIFFERENT:
        correct = False
    else:
        return None
    return AnswerCheck(correct=correct, parsed=_prepare(submitted), reference=_prepare(reference))


def check_answer_now(submitted: str, reference: str) -> AnswerCheck:
    """The check itself, in the calling process and without a time limit: only for code that
    already runs inside a bounded worker."""
    gold = parse_value(reference)
    answer = parse_value(submitted)
    return AnswerCheck(
        correct=equal(gold, answer),
        parsed=str(answer[-1]) if answer else "",
        reference=str(gold[-1]) if gold else "",
    )


def _quick_check(submitted: str, reference: str) -> AnswerCheck | None:
    """What is decided without the pool: refusal before parsing (raises) and plain numbers."""
    require_checkable(submitted)
    require_checkable(reference)
    return check_plain(submitted, reference)


def check_answer(submitted: str, reference: str, *, timeout: float | None = None) -> AnswerCheck:
    """Whether ``submitted`` is mathematically equivalent to ``reference``.

    Raises :class:`Uncheckable` for an answer that is too long or too costly to check, or
    whose check does not finish within ``timeout`` seconds (default: the pool's limit).
    """
    quick = _quick_check(submitted, reference)
    if quick is not None:
        return quick
    return bounded.run(check_answer_now, submitted, reference, timeout=timeout)


def is_correct(submitted: str, reference: str, *, timeout: float | None = None) -> bool:
    """Whether ``submitted`` is a checkable answer equal to ``reference``: a blank or
    uncheckable answer is not correct (for scoring, where no one is there to be told why)."""
    if not submitted:
        return False
    try:
        return check_answer(submitted, reference, timeout=timeout).correct
    except Uncheckable:
        return False


async def ais_correct(
    submitted: str,
    reference: str,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (also the worker's kill deadline)
) -> bool:
    """:func:`is_correct` for an event loop."""
    if not submitted:
        return False
    try:
        return (await acheck_answer(submitted, reference, timeout=timeout)).correct
    except Uncheckable:
        return False


async def acheck_answer(
    submitted: str,
    reference: str,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (also the worker's kill deadline)
) -> AnswerCheck:
    """:func:`check_answer` for an event loop: the loop keeps serving while it runs."""
    quick = _quick_check(submitted, reference)
    if quick is not None:
        return quick
    return await bounded.arun(check_answer_now, submitted, reference, timeout=timeout)
