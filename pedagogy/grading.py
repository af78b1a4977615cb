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
import math
import re
from dataclasses import dataclass
from fractions import Fraction

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from . import bounded, numbers
from .bounded import Uncheckable

# math-verify's own timeouts use SIGALRM; the worker's hard limit replaces them, and it warns
# on every call that they are off.
logging.getLogger("math_verify").setLevel(logging.ERROR)

__all__ = [
    "AmbiguousAnswer",
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
# Digits of the largest power of literals worked out at all: 9^9^9 has some 370 million.
MAX_POWER_DIGITS = 10_000

_EXTRACTION = [ExprExtractionConfig(), LatexExtractionConfig()]
_UNITS_AND_NOISE = re.compile(r"[$€£¥%]|\\%|\\\$|,(?=\d{3}\b)")
_POWER = re.compile(r"\^|\*\*")
# A number raised to numbers, right-nested as powers are read: 9^9^9, 9^{9^{9}}, 9**(9**9.
_NUMBER = r"\d{1,300}(?:\.\d{1,300})?"
_POWER_CHAIN = re.compile(rf"{_NUMBER}(?:\s*(?:\^|\*\*)\s*[{{(]?\s*{_NUMBER})+")
_CHAIN_NUMBER = re.compile(_NUMBER)
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
    # Why a right value still does not count ("write it in simplest form"), for the student.
    feedback: str = ""


class AmbiguousAnswer(Uncheckable):
    """The answer states more than one value ("5 or 6"): the student must pick one."""


# Words between two values that make an answer a choice rather than one value.
_CHOICE = re.compile(r"\bor\b|\beither\b|;|,\s|\s/\s|\?", re.IGNORECASE)
_UNIT_WORD = re.compile(r"^(.*?\d.*?)\s*([A-Za-z]{1,20}(?:\s+[A-Za-z]{1,20}){0,2})\.?$")
_FRACTION = re.compile(
    r"(?:(?P<whole>-?\d+)\s+(?:and\s+)?)?(?P<num>-?\d+)\s*/\s*(?P<den>\d+)"
    r"|\\[dt]?frac\{(?P<lnum>-?\d+)\}\{(?P<lden>\d+)\}"
)
NOT_SIMPLEST = "That is the right value, but this problem asks for it in simplest form."


def require_checkable(text: str) -> None:
    """Refuse, before any parsing, what no school answer needs and what would cost too much."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise Uncheckable(f"it is longer than {MAX_EXPRESSION_CHARS} characters")
    if len(_POWER.findall(text)) > MAX_POWERS:
        raise Uncheckable(f"it has more than {MAX_POWERS} powers")
    if text.count("!") > MAX_FACTORIALS:
        raise Uncheckable(f"it has more than {MAX_FACTORIALS} factorials")
    for chain in _POWER_CHAIN.finditer(text):
        if _power_digits([float(n) for n in _CHAIN_NUMBER.findall(chain.group())]) > (
            MAX_POWER_DIGITS
        ):
            raise Uncheckable(f"it is a power with more than {MAX_POWER_DIGITS:,} digits")


def _power_digits(chain: list[float]) -> float:
    """About how many digits ``chain[0] ^ chain[1] ^ ...`` has (read right to left), worked out
    in logarithms so that nothing large is ever computed (inf when an exponent alone is past
    any float)."""
    exponent = chain[-1]
    for level in range(len(chain) - 2, -1, -1):
        base = chain[level]
        if base <= 1:  # 0 or 1 or a fraction of 1, whatever the exponent
            exponent = base**exponent
            continue
        digits = exponent * math.log10(base)
        if level == 0:
            return digits + 1
        if digits > 300:
            return math.inf
        exponent = 10**digits
    return math.log10(exponent) + 1 if exponent >= 1 else 1.0


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


def _without_unit(text: str, problem_text: str) -> str:
    """``text`` without a trailing unit word the problem itself uses ("12 apples" for a problem
    about apples; "215 minutes" is read as a duration by :mod:`pedagogy.numbers` anyway)."""
    match = _UNIT_WORD.match(text.strip())
    if match is None or not problem_text:
        return text
    words = problem_text.lower()
    unit = match.group(2).lower()
    stems = {unit, unit.rstrip("s"), unit[:-2] if unit.endswith("es") else unit}
    if any(re.search(rf"\b{re.escape(stem)}", words) for stem in stems if len(stem) >= 2):
        return match.group(1)
    return text


def reading(text: str, problem_text: str = "") -> numbers.Mention | None:
    """The student's answer read as one number in any form students write (digits, fractions,
    mixed numbers, number words, percentages, money, durations, a unit the problem uses), or
    None when it is not one number. In-process and linear: the size limit is checked first."""
    require_checkable(text)
    found = numbers.answer_reading(text)
    if found is None:
        stripped = _without_unit(text, problem_text)
        if stripped != text:
            found = numbers.answer_reading(stripped)
    return found


def require_one_answer(text: str) -> None:
    """Refuse an answer that offers a choice of values ("5 or 6", "5, 6"), with a clear reason."""
    require_checkable(text)
    if numbers.answer_reading(text) is not None:
        return
    values = [m for m in numbers.mentions(text) if m.kind != "digit_sequence"]
    if len({m.values[0] for m in values}) < 2:
        return
    between = text[values[0].end : values[-1].start]
    if _CHOICE.search(between):
        shown = ", ".join(text[m.start : m.end] for m in values[:3])
        raise AmbiguousAnswer(f"it gives more than one answer ({shown}); please give just one")


def _same_value(answer: numbers.Mention, gold: numbers.Mention) -> bool | None:
    """True when a reader's value of one is the other's literal value ("75%" and "0.75"),
    False when every pair is clearly apart, None when only math-verify's rounding can tell."""
    if answer.values[0] in gold.values or gold.values[0] in answer.values:
        return True
    if all(abs(a - g) > _SURELY_DIFFERENT for a in answer.values for g in gold.values):
        return False
    return None


def is_simplest(text: str) -> bool:
    """Whether every fraction written in ``text`` is in lowest terms (and a mixed number's
    fraction proper)."""
    for match in _FRACTION.finditer(text):
        numerator = int(match.group("num") or match.group("lnum"))
        denominator = int(match.group("den") or match.group("lden"))
        if denominator == 0 or math.gcd(numerator, denominator) != 1:
            return False
        if match.group("whole") and abs(numerator) >= denominator:
            return False
        if match.group("den") and not match.group("whole") and denominator == 1:
            return False
    return True


def _plain_value(text: str) -> Fraction | None:
    prepared = _prepare(text)
    if _PLAIN.fullmatch(prepared) is None:
        return None
    numerator, _, denominator = prepared.partition("/")
    if denominator and int(denominator) == 0:
        return None
    return Fraction(numerator) / Fraction(denominator or 1)


def is_plain(text: str, problem_text: str = "") -> bool:
    """Whether ``text`` is a single number in a form read without the process pool (a plain
    number or fraction, or any form :func:`reading` reads)."""
    if _plain_value(text) is not None:
        return True
    try:
        return reading(text, problem_text) is not None
    except (Uncheckable, ValueError):  # past the size limits
        return False


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


def _quick_check(
    submitted: str, reference: str, problem_text: str = "", simplest: bool = False
) -> AnswerCheck | None:
    """What is decided without the pool: refusal before parsing (raises), a choice of values
    (raises :class:`AmbiguousAnswer`), and two single numbers in any form students write."""
    require_checkable(submitted)
    require_checkable(reference)
    require_one_answer(submitted)
    check = None
    answer, gold = reading(submitted, problem_text), numbers.answer_reading(reference)
    if answer is not None and gold is not None:
        same = _same_value(answer, gold)
        if same is not None:
            check = AnswerCheck(correct=same, parsed=submitted.strip(), reference=reference)
    elif "%" not in submitted + reference:  # "75%" is 75 or 0.75: only readings decide that
        check = check_plain(submitted, reference)
    if check is not None and check.correct and simplest and not is_simplest(submitted):
        return AnswerCheck(
            correct=False, parsed=check.parsed, reference=check.reference, feedback=NOT_SIMPLEST
        )
    return check


def check_answer(
    submitted: str,
    reference: str,
    *,
    problem_text: str = "",
    simplest: bool = False,
    timeout: float | None = None,
) -> AnswerCheck:
    """Whether ``submitted`` is mathematically equivalent to ``reference``.

    Answers are read as students write them (mixed numbers, number words, percentages, money,
    durations, a unit the problem uses: ``problem_text``). With ``simplest`` a right value in a
    fraction that is not in lowest terms is not correct (its ``feedback`` says why). Raises
    :class:`AmbiguousAnswer` for an answer that offers several values, and
    :class:`Uncheckable` for one that is too long or too costly to check, or whose check does
    not finish within ``timeout`` seconds (default: the pool's limit).
    """
    quick = _quick_check(submitted, reference, problem_text, simplest)
    if quick is not None:
        return quick
    return _simplest(
        bounded.run(check_answer_now, submitted, reference, timeout=timeout), submitted, simplest
    )


def _simplest(check: AnswerCheck, submitted: str, simplest: bool) -> AnswerCheck:
    if check.correct and simplest and not is_simplest(submitted):
        return AnswerCheck(False, check.parsed, check.reference, feedback=NOT_SIMPLEST)
    return check


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
    problem_text: str = "",
    simplest: bool = False,
    timeout: float | None = None,  # noqa: ASYNC109 (also the worker's kill deadline)
) -> AnswerCheck:
    """:func:`check_answer` for an event loop: the loop keeps serving while it runs."""
    quick = _quick_check(submitted, reference, problem_text, simplest)
    if quick is not None:
        return quick
    check = await bounded.arun(check_answer_now, submitted, reference, timeout=timeout)
    return _simplest(check, submitted, simplest)
