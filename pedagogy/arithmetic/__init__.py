"""Arithmetic claims a tutor states ("7 * 14 = 98", "3/4 of 360 is 270"), found and checked.

The answer guard refuses a reply that states false arithmetic. :func:`claims` finds every
computation a text states and evaluates its left side exactly (:class:`fractions.Fraction`, with
a small recursive-descent parser of its own: never ``eval``, never sympy);
:attr:`Claim.true` compares it with the value the tutor gave, allowing the rounding the tutor
wrote ("10/3 ≈ 3.33", "10/3 = 3.3").

What is a claim. ``<expression> <relation> <value>``, where the relation is "=", "≈",
``\\approx``, "is", "equals", "makes", "gives", "is equal to" or "is about/approximately/..."
(approximate), and the expression has at least one operator: ``+ - * / ^ x``, their Unicode
forms (minus, multiplication and division signs, middle dot), LaTeX
``\\times \\cdot \\div \\frac{a}{b}``, powers (``2^{10}``, "5²", "squared"), percentages and
fractions "of" a number ("25% of 80", "3/4 of 360"), "half of", "twice", and the words "plus",
"minus", "times", "divided by", "multiplied by". Numbers may have thousands separators,
decimals, money signs and LaTeX ``$...$`` around them; "3 1/2" is a mixed number. The left side
is the longest expression directly before the relation, so earlier prose is not swallowed. In a
chain "3 * (4 + 2) = 3 * 6 = 18" each link is a claim; a run-on chain "2 + 3 = 5 + 1 = 6" is read
as its links "2 + 3 = 5" and "5 + 1 = 6".

Not claims: equations with variables (a letter joined to the expression: "3x = 12",
"x + 2 = 5", "f(2) = 4"), a bare number equal to a number ("5 = 5", "25% = $20"), dates
("2024-05-01"), ranges ("pages 10-12"), times ("3:45"), a value followed by a unit or variable
written against it ("12cm", "4x") or by a comparison ("is 2 more than 5").

Streaming rule. The guard calls :func:`claims` on a prefix of a reply as it grows. A claim found
in a text ``s`` is found, with the same span and values, in ``s + t`` for every continuation
``t``, as long as ``s`` goes on after the claim's stated value (``s[claim.end:]``) with a
character other than a digit, "." or ",". Such claims are reported only once the text after them
settles them: "= 3 " is not yet a claim, since "* 6 = 18" may follow and make it the chain link
"= 3 * 6"; "= 3 apples" is. A claim whose stated value ends the text, or is followed only by
digits, "." and ",", is read as if the text ended there ("... = 98." at the end of a reply).
``final=True`` says the text is complete: every claim is read as the text stands (a reply
ending "= 98 " or "= **98**").

Bounds. Texts over :data:`MAX_TEXT_CHARS` raise :class:`TextTooLong` before any reading.
Numerals over :data:`MAX_DIGITS` digits, exponents over :data:`MAX_EXPONENT` in absolute value,
expressions with more than :data:`MAX_OPERATORS` operators or nested deeper than
:data:`MAX_NESTING`, results whose numerator or denominator pass :data:`MAX_MAGNITUDE`, and
division by zero make the claim be skipped. Each relation is read in windows of bounded size
that do not reach back past the previous relation, at most :data:`MAX_CANDIDATES` relations
with an operator before them are read per call, and the regular expressions are token scanners
without nested repetition, so time is linear in the length of the text.

Where each part lives: :mod:`.limits` holds the bounds and :class:`TextTooLong`;
:mod:`.vocabulary` the characters, words and LaTeX commands the grammar gives a meaning to;
:mod:`.lexer` the raw tokens and the lexemes built from them; :mod:`.evaluation` the exact
evaluator with its size bounds; :mod:`.sides` the reading of the expression before a relation
and of the value stated after it; :mod:`.claims` :class:`Claim`, :func:`claims` and
:func:`false_claims`, the relations and the cheap tests that skip most of them.
"""

from .claims import Claim, claims, false_claims
from .limits import (
    MAX_CANDIDATES,
    MAX_DIGITS,
    MAX_EXPONENT,
    MAX_MAGNITUDE,
    MAX_NESTING,
    MAX_OPERATORS,
    MAX_TEXT_CHARS,
    TextTooLong,
)

__all__ = [
    "MAX_CANDIDATES",
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "MAX_MAGNITUDE",
    "MAX_NESTING",
    "MAX_OPERATORS",
    "MAX_TEXT_CHARS",
    "Claim",
    "TextTooLong",
    "claims",
    "false_claims",
]
