"""A calculator tool for the simulated student: ``calc(<expression>)`` in its solution.

The default student (SmolLM2-135M) often picks the right operations and then computes them
wrong ("7 * 14 = 84"). With the calculator on, its prompt lets it write a calculation as
``calc(7 * 14)`` (:data:`CALCULATOR_INSTRUCTION`), and :func:`apply_calculator` replaces each
call with its exact value before the final answer is read, so that whether the student solves
a problem depends on the operations it chose, which the dialogue can teach, not on its
multiplication. A value the model wrote after the call ("calc(7 * 14) = 84") is its own guess
and is replaced too, and so is every later mention of that guessed number, in the text and in
later calls ("Final answer: 84" becomes "Final answer: 98"): the substitution is made after
the fact, and this is what the model would have written had it seen the result at the call,
as in a tool loop that stops generation at each call.

Expressions are evaluated by the answer guard's exact evaluator (:func:`pedagogy.arithmetic.
claims`: Fractions, a recursive-descent parser, never ``eval`` or sympy), which bounds digits,
exponents, operators, nesting and magnitudes. A call that it cannot evaluate (a variable, a
typo, an unbalanced bracket, a tower of powers, division by zero) stays in the text as it was
written. Bounds of our own: texts longer than :data:`MAX_TEXT_CHARS` are left unchanged, an
expression longer than :data:`MAX_EXPRESSION_CHARS` is not evaluated, a result longer than
:data:`MAX_RESULT_CHARS` is not written in, and at most
:data:`MAX_CALLS` calls are evaluated per text; the scan is a single pass over the text.
"""

from __future__ import annotations

import re
from fractions import Fraction

from pedagogy.arithmetic import TextTooLong, claims

__all__ = [
    "CALCULATOR_INSTRUCTION",
    "MAX_CALLS",
    "MAX_EXPRESSION_CHARS",
    "MAX_RESULT_CHARS",
    "MAX_TEXT_CHARS",
    "apply_calculator",
    "evaluate",
    "format_value",
]

MAX_TEXT_CHARS = 20_000
MAX_EXPRESSION_CHARS = 200
MAX_CALLS = 50
# Longest result written in (a longer one, "123456789/987654321", is no school calculation and
# would let mentions of a guess grow the text): such a call stays as text.
MAX_RESULT_CHARS = 24

CALCULATOR_INSTRUCTION = (
    "You have a calculator. Do not do arithmetic in your head: write every calculation as "
    "calc(expression), for example calc(7 * 14) or calc(20 - 7.45 - 1.80), and the calculator "
    "puts in the exact result. You may write the final answer as a calculation too, for "
    "example 'Final answer: calc(84 / 4)'."
)

_CALL = re.compile(r"\bcalc\s{0,3}\(", re.IGNORECASE)
# What the model may have written after a call as its own result: "= 84", "= $84.00".
_STATED = re.compile(
    r"[ \t]{0,3}=[ \t]{0,3}\$?(?P<number>-?\d{1,15}(?:,\d{3}){0,5}(?:\.\d{1,15})?)(?!\d|\.\d)"
)
# A number in the text, as a later mention of a guessed value.
_NUMBER = re.compile(r"(?<![\d.,])\d{1,15}(?:,\d{3}){0,5}(?:\.\d{1,15})?(?!\d|[.,]\d)")
_PLAIN = re.compile(r"\s*\$?(-?\d{1,30}(?:\.\d{1,30})?)\s*")
_LEADING_NOISE = frozenset(" \t\n$€£")


def format_value(value: Fraction) -> str:
    """The value as the calculator shows it: "98", "10.75", "-0.5", or "10/3" when the
    decimal would not end within six places (the grader reads fractions exactly)."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value.denominator == 1:
        return f"{sign}{value.numerator}"
    for places in range(1, 7):
        scaled = value * 10**places
        if scaled.denominator == 1:
            whole, rest = divmod(scaled.numerator, 10**places)
            return f"{sign}{whole}.{str(rest).rjust(places, '0')}"
    return f"{sign}{value.numerator}/{value.denominator}"


def evaluate(expression: str) -> Fraction | None:
    """The exact value of an arithmetic expression, or None when it is not one that the
    evaluator reads whole (or it is too long)."""
    if len(expression) > MAX_EXPRESSION_CHARS or "=" in expression:
        return None
    plain = _PLAIN.fullmatch(expression)
    if plain is not None:
        return Fraction(plain.group(1))
    text = f"{expression} = 0"
    try:
        found = claims(text, final=True)
    except TextTooLong:
        return None
    if len(found) != 1:
        return None
    claim = found[0]
    # The claim must be the whole expression: claims() reads the longest expression before
    # the "=", so anything it left out in front ("apples 3 + 4") means it was not arithmetic.
    if any(char not in _LEADING_NOISE for char in expression[: claim.start]):
        return None
    if expression[claim.start + len(claim.expression) :].strip():
        return None
    return claim.actual


def _closing(text: str, start: int) -> int | None:
    """Index of the ")" that closes the "(" just before ``start``, looking at most
    :data:`MAX_EXPRESSION_CHARS` characters ahead."""
    depth = 1
    for index in range(start, min(len(text), start + MAX_EXPRESSION_CHARS + 1)):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        elif char == "\n":
            return None
    return None


def _carry(text: str, guesses: dict[Fraction, str]) -> str:
    """``text`` with every number that is a replaced guess written as the calculator's value
    (one linear pass)."""
    if not guesses:
        return text

    def swap(match: re.Match[str]) -> str:
        written = match.group()
        return guesses.get(Fraction(written.replace(",", "")), written)

    return _NUMBER.sub(swap, text)


def apply_calculator(text: str) -> str:
    """``text`` with every ``calc(...)`` it can evaluate replaced by its value, the value the
    model wrote after it (if any) dropped, and later mentions of a wrong guess corrected;
    everything else is left as written."""
    if len(text) > MAX_TEXT_CHARS or "calc" not in text.lower():
        return text
    out: list[str] = []
    guesses: dict[Fraction, str] = {}  # a value the model guessed -> the calculator's
    position = 0
    calls = 0
    for match in _CALL.finditer(text):
        if match.start() < position:
            continue  # inside a call already replaced
        if calls >= MAX_CALLS:
            break
        calls += 1
        end = _closing(text, match.end())
        if end is None:
            continue
        value = evaluate(_carry(text[match.end() : end], guesses))
        if value is None:
            continue
        result = format_value(value)
        if len(result) > MAX_RESULT_CHARS:
            continue
        out.append(_carry(text[position : match.start()], guesses))
        out.append(result)
        stated = _STATED.match(text, end + 1)
        position = end + 1
        if stated is not None:
            position = stated.end()
            guess = Fraction(stated.group("number").replace(",", ""))
            if guess != value:
                guesses[guess] = result
    out.append(_carry(text[position:], guesses))
    return "".join(out)
