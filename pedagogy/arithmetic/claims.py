"""Finding claims: :class:`Claim`, :func:`claims`, :func:`false_claims`, the relations and the
cheap tests that skip most of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .limits import _LEFT_WINDOWS, _RIGHT_WINDOWS, MAX_CANDIDATES, MAX_TEXT_CHARS, TextTooLong
from .sides import _RETRY, _left_side, _Right, _right_side


@dataclass(frozen=True)
class Claim:
    """One stated computation: ``expression relation stated_text``, at ``text[start:end]``.

    ``places`` is the number of decimal places the stated value was written with (None when it
    is not a single decimal numeral: a fraction, a mixed number, an expression); it says how
    much rounding the tutor claimed. For an approximate relation on a whole number it is minus
    the number of trailing zeros ("≈ 3,300" claims hundreds)."""

    start: int
    end: int
    expression: str
    stated: Fraction
    actual: Fraction
    relation: str = "="
    stated_text: str = ""
    places: int | None = None
    approximate: bool = False

    @property
    def true(self) -> bool:
        """Whether the stated value is right, to the precision the tutor wrote: "3.33" and "3.3"
        for 10/3 are true, "3" is not (unless the relation is approximate)."""
        diff = abs(self.actual - self.stated)
        if diff == 0:
            return True
        if self.places is None:
            return False
        scaled_diff = diff * Fraction(10) ** self.places  # in units of the last place written
        if scaled_diff * 2 <= 1:
            # Rounded to the places written: "= 3.33" and "= 3.3" for 10/3, not "= 3".
            return self.places > 0 or self.approximate
        if self.approximate and scaled_diff < 1:
            # Truncated: "2/3 ≈ 0.66" (toward zero, not away from it: "10/3 ≈ 3.34" is false).
            return abs(self.stated) < abs(self.actual)
        return False

    def describe(self) -> str:
        """One line for the model or a teacher, with the correct value when it is false:
        "7 * 14 = 84 is false: 7 * 14 = 98."."""
        head = f"{self.expression} {self.relation} {self.stated_text or _format(self.stated)}"
        if self.true:
            return f"{head} is true."
        return f"{head} is false: {self.expression} = {_format(self.actual)}."


def claims(text: str, *, final: bool = False) -> list[Claim]:
    """Every arithmetic claim the text states, in order (see the module docstring).

    ``final`` says that ``text`` is the whole reply; without it, claims that text still to come
    could change are left out (the streaming rule)."""
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLong(f"the text is longer than {MAX_TEXT_CHARS} characters")
    found: list[Claim] = []
    boundary = 0
    candidates = 0
    for relation in _RELATION.finditer(text):
        start, end = relation.span()
        window = _candidate(text, start, end, boundary)
        if window is not None:
            candidates += 1
            if candidates > MAX_CANDIDATES:
                break
            claim = _claim_at(text, relation, boundary, window, final)
            if claim is not None:
                found.append(claim)
        boundary = end
    return found


def false_claims(text: str, *, final: bool = False) -> list[Claim]:
    """The claims of :func:`claims` that are false."""
    return [claim for claim in claims(text, final=final) if not claim.true]


# ---- relations -------------------------------------------------------------------------------

_APPROXIMATE_WORDS = r"approximately|about|roughly|around|nearly|close\s++to"
_RELATION = re.compile(
    r"=|≈|\\approx(?![A-Za-z])"
    rf"|\b(?:is\s++equal\s++to|is\s++(?:{_APPROXIMATE_WORDS})|is|equals|makes|gives)\b"
)


def _relation_name(written: str) -> tuple[str, bool]:
    """The relation as described to a reader, and whether it is approximate."""
    if written in ("≈", "\\approx"):
        return "≈", True
    words = " ".join(written.split())
    if words.startswith("is ") and words != "is equal to":
        return words, True
    return words, False


# ---- candidates ------------------------------------------------------------------------------

_NUMBER_TAIL = re.compile(r"[0-9.,]*\Z")


def _candidate(text: str, start: int, end: int, boundary: int) -> int | None:
    """Cheap tests that most relations fail ("This is"): None when the relation at
    ``text[start:end]`` cannot be a claim, else where to start reading its left side."""
    if not _may_end_expression(text, start, boundary) or not _may_start_value(text, end):
        return None
    for width in _LEFT_WINDOWS:
        window = max(boundary, start - width)
        # Where the run of expression characters that ends at the relation begins.
        run = _RUN_REVERSED.match(text[window:start][::-1])
        assert run is not None  # the pattern is a starred group: it matches the empty string
        begin = start - run.end()
        # A run that reaches the window's start, or stops at a word the window cuts (the end
        # of "divided" or "\\times"), may begin further back.
        if window == boundary or (begin > window and not text[window:begin].isalpha()):
            break
    else:
        return None  # longer than the widest window
    if _OPERATOR_HINT.search(text, begin, start) is None:
        return None
    # Two characters more for what stands right before the expression ("3:45", "f(2)").
    return max(window, begin - 2)


def _claim_at(
    text: str, relation: re.Match[str], boundary: int, window: int, final: bool
) -> Claim | None:
    start, end = relation.span()
    left = _left_side(text, window, start)
    if left is None:
        return None
    right = None
    for width in _RIGHT_WINDOWS:
        window = min(len(text), end + width)
        right = _right_side(text, end, window)
        if right is not _RETRY:
            break
    if not isinstance(right, _Right):
        return None
    if left.bare_percents or right.bare_percents:
        # "100% - 25% = 75%" is arithmetic on percentages; "80 - 25% = 60" is shorthand.
        if left.bare_percents != left.numbers or right.bare_percents != right.numbers:
            return None
    stated, claim_end, places = right.value, right.end, right.places
    first = right.first
    if (
        right.operators
        and first is not None
        and left.value != right.value
        and first.value == left.value
    ):
        # A run-on chain: "2 + 3 = 5 + 1 = 6" states 2 + 3 = 5.
        stated, claim_end, places = first.value or 0, first.end, first.places
    if right.unsure and not final and not _NUMBER_TAIL.match(text, claim_end):
        return None
    name, approximate = _relation_name(relation.group())
    if approximate and places == 0:
        whole = abs(stated.numerator)
        while whole and whole % 10 == 0:
            whole //= 10
            places -= 1
    return Claim(
        start=left.start,
        end=claim_end,
        expression=text[left.start : left.end],
        stated=Fraction(stated),
        actual=Fraction(left.value),
        relation=name,
        stated_text=text[right.start : claim_end],
        places=places,
        approximate=approximate,
    )


# The characters, LaTeX commands and words that expressions are made of, written backwards: a
# match at the start of the reversed text before a relation is the run in which its left side
# lies (a superset of what the lexer reads as an expression). Possessive, and every alternative
# is a fixed string or one character class, so the match is linear in the window.
_RUN_REVERSED = re.compile(
    r"(?:[^A-Za-z]\\|[A-Za-z]++\\|[0-9\s.,+\-−×*·⋅∙÷/^()\[\]{}$€£%&`²³½⅓⅔¼¾⅛]"
    r"|(?<=[0-9])[xX](?=[0-9])"
    r"|\b(?i:fo|sulp|sunim|semit|dedivid|deilpitlum|yb|flah|driht|retrauq|htruof|htfif|htnet"
    r"|eciwt|elbuod|elpirt|derauqs|debuc|tnecrep|x)\b)*+"
)
# Every operator the parser counts contains one of these (a superset, to skip reading at all).
_OPERATOR_HINT = re.compile(
    r"[-+−×*·⋅∙÷/^²³(xX\\]|(?i:of|plus|minus|times|divided|multiplied|half|third|quarter"
    r"|fourth|fifth|tenth|twice|double|triple|squared|cubed)"
)


def _may_end_expression(text: str, at: int, boundary: int) -> bool:
    """A cheap test on the character before a relation (most "is" follow a word)."""
    j = at - 1
    while j >= boundary and j > at - 64 and text[j].isspace():
        j -= 1
    if j < boundary:
        return False
    char = text[j]
    if char.isalpha():
        return text.endswith(("squared", "cubed"), boundary, j + 1)
    return char not in ".,:;?!<>=≠≤≥"


_VALUE_START = re.compile(
    r"\s*+(?:[0-9.$€£(\[{\\½⅓⅔¼¾⅛-]|−|(?i:half|third|quarter|fourth|fifth|tenth|twice|double"
    r"|triple)\b)"
)


def _may_start_value(text: str, at: int) -> bool:
    return _VALUE_START.match(text, at, min(len(text), at + 64)) is not None


def _format(value: Fraction) -> str:
    """A value as a reader expects it: "98", "10.75", "10/3 (about 3.3333)"."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    if rest == 0:
        return f"{sign}{whole}"
    denominator = value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    places = max(twos, fives)
    if denominator == 1 and places <= 12:
        digits = str(rest * 10**places // value.denominator).rjust(places, "0")
        return f"{sign}{whole}.{digits}"
    rounded = round(value * 10**4)
    about = f"{rounded // 10**4}.{str(rounded % 10**4).rjust(4, '0')}"
    return f"{sign}{value.numerator}/{value.denominator} (about {sign}{about})"
