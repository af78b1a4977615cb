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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "MAX_TEXT_CHARS",
    "Claim",
    "TextTooLong",
    "claims",
    "false_claims",
]

MAX_TEXT_CHARS = 20_000
MAX_DIGITS = 30
MAX_EXPONENT = 12
MAX_OPERATORS = 20
MAX_NESTING = 10
MAX_MAGNITUDE = 10**60
# Relations read per call that pass the cheap tests (an operator before, a value after): a
# bound on the work one call does, far above what a reply states.
MAX_CANDIDATES = 400
# Windows read around a relation: the left side is read from at most this many characters
# before it (a short window first, since most expressions are short), the right side from at
# most this many after it. An expression that does not fit is not a claim.
_LEFT_WINDOWS = (64, 400)
_RIGHT_WINDOWS = (48, 300)


class TextTooLong(ValueError):
    """The text is longer than :data:`MAX_TEXT_CHARS`; nothing was read."""


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


# Values are ints while they are whole (cheaper than Fractions), Fractions otherwise.
_Value = Fraction | int

# ---- raw tokens ------------------------------------------------------------------------------
# Digit runs, whitespace runs, LaTeX commands and escapes, "**", letter runs and single other
# characters. Appending text can only lengthen the last token (or turn a trailing "\" or "*"
# into a longer one) and add new ones: every earlier token stays as it is.

_RAW = re.compile(
    r"(?P<num>[0-9]+)|(?P<ws>\s+)|(?P<cmd>\\[A-Za-z]+)|(?P<esc>\\[^A-Za-z])|(?P<star>\*\*)"
    r"|(?P<word>[^\W\d_]+)|(?P<other>.)",
    re.DOTALL,
)
# Tokens whose text may still grow when text is appended after them.
_GROWING = frozenset({"num", "ws", "word", "cmd"})

_VULGAR = {
    "½": Fraction(1, 2),
    "⅓": Fraction(1, 3),
    "⅔": Fraction(2, 3),
    "¼": Fraction(1, 4),
    "¾": Fraction(3, 4),
    "⅛": Fraction(1, 8),
}
_SUPERSCRIPTS = {"²": 2, "³": 3}
_OPERATOR_CHARS = {
    "+": "+",
    "-": "-",
    "−": "-",
    "×": "*",
    "*": "*",
    "·": "*",
    "⋅": "*",
    "∙": "*",
    "÷": "/",
    "/": "/",
    "^": "^",
}
_OPERATOR_WORDS = {"plus": "+", "minus": "-", "times": "*", "of": "of"}
_OPERATOR_PAIRS = {"divided": "/", "multiplied": "*"}  # followed by "by"
_PART_WORDS = {"half": 2, "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "tenth": 10}
_MULTIPLIER_WORDS = {"twice": 2, "double": 2, "triple": 3}
_POWER_WORDS = {"squared": 2, "cubed": 3}
_COMMANDS = {
    "\\times": ("op", "*"),
    "\\cdot": ("op", "*"),
    "\\div": ("op", "/"),
    "\\frac": ("frac", None),
    "\\dfrac": ("frac", None),
    "\\tfrac": ("frac", None),
}
_SPACING_COMMANDS = frozenset(
    "\\left \\right \\bigl \\bigr \\Bigl \\Bigr \\big \\Big \\quad \\qquad \\displaystyle "
    "\\textstyle".split()
)
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(")]}")
# Words right after a value that make it part of a comparison, not a result.
_COMPARISONS = frozenset(
    "more less fewer greater smaller larger bigger higher lower than times away short off apart "
    "too extra".split()
)
# Every prefix of a word the lexer or the claim reader gives a meaning to: a last word that is
# none of them stays an ordinary word however the text goes on ("Next", unlike "t" or "mor").
_WORD_PREFIXES = frozenset(
    word[:k]
    for word in (
        *_OPERATOR_WORDS,
        *_OPERATOR_PAIRS,
        *_PART_WORDS,
        *_MULTIPLIER_WORDS,
        *_POWER_WORDS,
        *_COMPARISONS,
        "by",
        "of",
        "x",
        "percent",
    )
    for k in range(1, len(word) + 1)
)
# Characters that may stand right before an expression with nothing between.
_SAFE_BEFORE = frozenset("([{,;:!?\"'“”‘’`>|")


class _Lexeme:
    """A token of the expression grammar, made of one or more raw tokens."""

    __slots__ = (
        "bad",
        "end",
        "glued",
        "kind",
        "op",
        "places",
        "plain",
        "raw",
        "start",
        "unsure",
        "value",
        "word",
    )

    def __init__(self, kind: str, start: int, end: int, op: str | None = None) -> None:
        self.kind = kind  # num op lp rp frac pct sup mult ws ign close break
        self.start = start
        self.end = end
        self.op = op  # operator; opening/closing bracket; kind of token for break
        self.value: _Value | None = None
        self.places: int | None = None
        self.bad = False  # a numeral that is not a value (date, range, leading zero, too long)
        self.plain = False  # a whole number written with digits only
        self.word = False  # an operator written as a word
        self.glued = False  # nothing but ignorable characters between it and the lexeme before
        self.unsure = False  # text appended to a prefix could change this lexeme
        self.raw = 0  # index of its first raw token


class _Lexer:
    """Turns the raw tokens of ``text[start:end]`` into lexemes, left to right.

    Every look at a raw token is noted: a lexeme is *unsure* when ``right_open`` (the window
    ends where the text may go on) and it looked past the last token, at the content of a last
    token that may still grow, or at the kind of a last token that may still change."""

    def __init__(self, text: str, start: int, end: int, right_open: bool) -> None:
        self.text = text
        self.tokens = _RAW.finditer(text, start, end)
        self.kinds: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.done = False  # every raw token of the window is loaded
        self.right_open = right_open
        self.seen_kind = 0
        self.seen_text = 0
        self.next_raw = 0
        self.out: list[_Lexeme] = []
        if not right_open:
            # A left side is read whole: load its tokens at once.
            for match in self.tokens:
                self.kinds.append(match.lastgroup or "other")
                self.starts.append(match.start())
                self.ends.append(match.end())
            self.done = True

    def _load(self, j: int) -> bool:
        """Read raw tokens up to index j (lazily: a right side is read only as far as it
        goes); whether token j exists."""
        kinds = self.kinds
        while len(kinds) <= j and not self.done:
            match = next(self.tokens, None)
            if match is None:
                self.done = True
                break
            kinds.append(match.lastgroup or "other")
            self.starts.append(match.start())
            self.ends.append(match.end())
        return j < len(kinds)

    # Looks at raw tokens, noted for the unsure rule.
    def kind(self, j: int) -> str | None:
        if j > self.seen_kind:
            self.seen_kind = j
        if j < len(self.kinds) or self._load(j):
            return self.kinds[j]
        return None

    def content(self, j: int) -> str:
        if j > self.seen_text:
            self.seen_text = j
        if j > self.seen_kind:
            self.seen_kind = j
        if j < len(self.kinds) or self._load(j):
            return self.text[self.starts[j] : self.ends[j]]
        return ""

    def glued(self, j: int) -> bool:
        """Raw token j starts where token j - 1 ends (both exist)."""
        return 0 < j < len(self.kinds) and self.starts[j] == self.ends[j - 1]

    def is_other(self, j: int, chars: str) -> bool:
        return self.kind(j) == "other" and self.text[self.starts[j]] in chars

    def ends_operand(self, j: int) -> bool:
        """Raw token j (before the current one) can end an operand."""
        if j < 0:
            return False
        kind = self.kinds[j]
        if kind == "num":
            return True
        first = self.text[self.starts[j]]
        if kind == "other":
            return first in ")]}%"
        if kind == "esc":
            return first == "\\" and self.text[self.starts[j] + 1] in "%)]"
        if kind == "word":
            return self.text[self.starts[j] : self.ends[j]].lower() in _POWER_WORDS or (
                first in _SUPERSCRIPTS
            )
        return False

    def starts_operand(self, j: int) -> bool:
        kind = self.kind(j)
        if kind == "num":
            return True
        if kind == "other":
            return self.text[self.starts[j]] in "([{.$-−"
        if kind == "cmd":
            return self.content(j) in ("\\frac", "\\dfrac", "\\tfrac", "\\left")
        return False

    def lex(self) -> list[_Lexeme]:
        """Every lexeme of the window."""
        while self.next() is not None:
            pass
        return self.out

    def next(self) -> _Lexeme | None:
        """The next lexeme, or None at the end of the window."""
        i = self.next_raw
        if not (i < len(self.kinds) or self._load(i)):
            return None
        self.seen_kind = self.seen_text = i
        lexeme, self.next_raw = self._one(i)
        lexeme.raw = i
        ordinary_word = (
            lexeme.kind == "break"
            and lexeme.op == "word"
            and self.next_raw == i + 1
            and self.seen_kind == i
            and self.text[lexeme.start : lexeme.end].lower() not in _WORD_PREFIXES
        )
        if self.right_open and not ordinary_word:
            seen = max(self.seen_kind, self.seen_text)
            self._load(seen + 1)  # is the last token seen the window's last?
            count = len(self.kinds)
            last = count - 1 if self.done else -1
            lexeme.unsure = seen >= count or (
                last >= 0
                and (
                    (self.seen_text == last and self.kinds[last] in _GROWING)
                    or (
                        seen == last
                        and self.kinds[last] == "other"
                        and self.text[self.starts[last]] in "\\*"
                    )
                )
            )
        if self.out:
            before = self.out[-1]
            lexeme.glued = before.kind != "ws" and before.end == lexeme.start
        self.out.append(lexeme)
        return lexeme

    def _one(self, i: int) -> tuple[_Lexeme, int]:
        kind = self.kinds[i]
        start, end = self.starts[i], self.ends[i]
        text = self.text
        if kind == "ws":
            self.content(i)
            return _Lexeme("ws", start, end), i + 1
        if kind == "num":
            return self._number(i)
        if kind == "word":
            return self._word(i)
        if kind == "star":
            return _Lexeme("ign", start, end), i + 1
        if kind == "cmd":
            name = self.content(i)
            if name in _COMMANDS:
                lexeme_kind, op = _COMMANDS[name]
                return _Lexeme(lexeme_kind, start, end, op), i + 1
            if name in _SPACING_COMMANDS:
                return _Lexeme("ign", start, end), i + 1
            return _Lexeme("break", start, end, "cmd"), i + 1
        if kind == "esc":
            escaped = text[start + 1]
            if escaped in ",;!: ([$":
                return _Lexeme("ign", start, end), i + 1
            if escaped in ")]":
                return _Lexeme("close", start, end), i + 1
            if escaped == "%":
                return _Lexeme("pct", start, end), i + 1
            return _Lexeme("break", start, end, "other"), i + 1
        char = text[start]
        if char in _OPERATOR_CHARS:
            if char in "-*+" and self._bullet(i):
                return _Lexeme("break", start, end, "other"), i + 1
            return _Lexeme("op", start, end, _OPERATOR_CHARS[char]), i + 1
        if char in _OPENERS:
            return _Lexeme("lp", start, end, char), i + 1
        if char in _CLOSERS:
            return _Lexeme("rp", start, end, char), i + 1
        if char == "%":
            return _Lexeme("pct", start, end), i + 1
        if char in "$€£":
            # Right after an operand a dollar closes LaTeX math; elsewhere it is a money sign
            # or an opening delimiter, and is skipped.
            closing = self.glued(i) and self.ends_operand(i - 1)
            return _Lexeme("close" if closing else "ign", start, end), i + 1
        if char in "&`":
            return _Lexeme("ign", start, end), i + 1
        if char == ".":
            after_digits = i > 0 and self.kinds[i - 1] == "num" and self.glued(i)
            if not after_digits and self.kind(i + 1) == "num" and self.glued(i + 1):
                digits = self.content(i + 1)
                lexeme = _Lexeme("num", start, self.ends[i + 1])
                lexeme.value = Fraction(int(digits), 10 ** len(digits))
                lexeme.places = len(digits)
                lexeme.bad = len(digits) > MAX_DIGITS
                return lexeme, i + 2
        if char in _VULGAR:
            lexeme = _Lexeme("num", start, end)
            lexeme.value = _VULGAR[char]
            return lexeme, i + 1
        return _Lexeme("break", start, end, "other"), i + 1

    def _bullet(self, i: int) -> bool:
        """A list bullet: "-", "*" or "+" first on its line, followed by a space."""
        if i == 0:
            at_line_start = self.starts[0] == 0 or self.text[self.starts[0] - 1] == "\n"
        else:
            before = self.text[self.starts[i - 1] : self.ends[i - 1]]
            at_line_start = self.kinds[i - 1] == "ws" and "\n" in before
        return at_line_start and self.kind(i + 1) == "ws"

    def _number(self, i: int) -> tuple[_Lexeme, int]:
        digits = self.content(i)
        j = i
        fraction = ""
        plain = True
        follower = self.kind(i + 1)
        if (
            follower is None
            or follower in ("cmd", "esc", "star")
            or (follower == "other" and self.text[self.starts[i + 1]] not in ",{.-/")
        ):
            # Nothing that can continue the numeral: the common case, read quickly.
            lexeme = _Lexeme("num", self.starts[i], self.ends[i])
            lexeme.bad = (len(digits) > 1 and digits[0] == "0") or len(digits) > MAX_DIGITS
            lexeme.plain = True
            lexeme.places = 0
            lexeme.value = None if lexeme.bad else int(digits)
            return lexeme, i + 1
        # Thousands separators: "1,234,567" and LaTeX "1{,}234".
        if len(digits) <= 3 and digits[0] != "0":
            while True:
                if (
                    self.is_other(j + 1, ",")
                    and self.glued(j + 1)
                    and self.kind(j + 2) == "num"
                    and self.glued(j + 2)
                    and len(self.content(j + 2)) == 3
                ):
                    digits += self.content(j + 2)
                    j += 2
                elif (
                    self.is_other(j + 1, "{")
                    and self.glued(j + 1)
                    and self.is_other(j + 2, ",")
                    and self.is_other(j + 3, "}")
                    and self.kind(j + 4) == "num"
                    and self.glued(j + 4)
                    and len(self.content(j + 4)) == 3
                ):
                    digits += self.content(j + 4)
                    j += 4
                else:
                    break
                plain = False
        if (
            self.is_other(j + 1, ".")
            and self.glued(j + 1)
            and self.kind(j + 2) == "num"
            and self.glued(j + 2)
        ):
            fraction = self.content(j + 2)
            j += 2
            plain = False
        lexeme = _Lexeme("num", self.starts[i], self.ends[j])
        lexeme.bad = (len(digits) > 1 and digits[0] == "0") or len(digits) + len(
            fraction
        ) > MAX_DIGITS
        lexeme.plain = plain
        lexeme.places = len(fraction)
        if lexeme.bad:
            return lexeme, j + 1
        number = int(digits + fraction)
        value = Fraction(number, 10 ** len(fraction)) if fraction else number
        if plain:
            value, j = self._number_tail(lexeme, value, i, j)
        lexeme.value = value
        lexeme.end = self.ends[j]
        return lexeme, j + 1

    def _number_tail(self, lexeme: _Lexeme, value: _Value, i: int, j: int) -> tuple[_Value, int]:
        """After a whole number: dates and ranges (not values), mixed numbers."""
        text = self.text
        if self.is_other(j + 1, "-/") and self.glued(j + 1):
            separator = text[self.starts[j + 1]]
            if self.kind(j + 2) == "num" and self.glued(j + 2):
                if self.is_other(j + 3, separator) and self.glued(j + 3):
                    if self.kind(j + 4) == "num" and self.glued(j + 4):
                        lexeme.bad = True  # 2024-05-01, 3/4/2024
                elif (
                    separator == "-"
                    and i >= 2
                    and self.kinds[i - 1] == "ws"
                    and self.kinds[i - 2] == "word"
                ):
                    right = self.content(j + 2)
                    if len(right) <= MAX_DIGITS and value < int(right):
                        lexeme.bad = True  # "pages 10-12": a range after a word
            return value, j
        if self.kind(j + 1) == "ws" and self.content(j + 1) == " ":
            if (
                self.kind(j + 2) == "num"
                and self.is_other(j + 3, "/")
                and self.glued(j + 3)
                and self.kind(j + 4) == "num"
                and self.glued(j + 4)
                and not (self.is_other(j + 5, "/.,") and self.glued(j + 5))
            ):
                top, bottom = self.content(j + 2), self.content(j + 4)
                if (
                    top[0] != "0"
                    and bottom[0] != "0"
                    and len(top) + len(bottom) <= MAX_DIGITS
                    and int(top) < int(bottom)
                ):
                    lexeme.places = None
                    return value + Fraction(int(top), int(bottom)), j + 4
            return value, j
        if self.kind(j + 1) == "word" and self.glued(j + 1):
            word = self.content(j + 1)
            if word in _VULGAR:
                lexeme.places = None
                return value + _VULGAR[word], j + 1
        return value, j

    def _word(self, i: int) -> tuple[_Lexeme, int]:
        start, end = self.starts[i], self.ends[i]
        word = self.content(i)
        lower = word.lower()
        if lower == "x":
            # "x" multiplies only between numbers written against it ("7x14") or with spaces
            # on both sides ("7 x 14"); anywhere else it is a variable.
            if (i > 0 and self.kinds[i - 1] == "num" and self.glued(i)) and (
                self.kind(i + 1) == "num" and self.glued(i + 1)
            ):
                return _Lexeme("op", start, end, "*"), i + 1
            if (
                i > 1
                and self.kinds[i - 1] == "ws"
                and self.ends_operand(i - 2)
                and self.kind(i + 1) == "ws"
                and self.starts_operand(i + 2)
            ):
                return _Lexeme("op", start, end, "*"), i + 1
            return _Lexeme("break", start, end, "word"), i + 1
        if lower in _OPERATOR_WORDS:
            lexeme = _Lexeme("op", start, end, _OPERATOR_WORDS[lower])
            lexeme.word = True
            return lexeme, i + 1
        if lower in _OPERATOR_PAIRS or lower in _PART_WORDS:
            if (
                self.kind(i + 1) == "ws"
                and self.kind(i + 2) == "word"
                and self.content(i + 2).lower() == ("by" if lower in _OPERATOR_PAIRS else "of")
            ):
                if lower in _OPERATOR_PAIRS:
                    lexeme = _Lexeme("op", start, self.ends[i + 2], _OPERATOR_PAIRS[lower])
                    lexeme.word = True
                else:
                    lexeme = _Lexeme("mult", start, self.ends[i + 2])
                    lexeme.value = Fraction(1, _PART_WORDS[lower])
                return lexeme, i + 3
            return _Lexeme("break", start, end, "word"), i + 1
        if lower in _MULTIPLIER_WORDS:
            lexeme = _Lexeme("mult", start, end)
            lexeme.value = _MULTIPLIER_WORDS[lower]
            return lexeme, i + 1
        if lower in _POWER_WORDS or word in _SUPERSCRIPTS:
            lexeme = _Lexeme("sup", start, end)
            lexeme.value = _POWER_WORDS.get(lower) or _SUPERSCRIPTS[word]
            return lexeme, i + 1
        if lower == "percent":
            return _Lexeme("pct", start, end), i + 1
        if word in _VULGAR:
            lexeme = _Lexeme("num", start, end)
            lexeme.value = _VULGAR[word]
            return lexeme, i + 1
        return _Lexeme("break", start, end, "word"), i + 1


class _Lexemes:
    """The significant lexemes of a window (no whitespace or ignorable marks), read lazily."""

    def __init__(self, lexer: _Lexer | None = None, lexemes: list[_Lexeme] | None = None) -> None:
        self.lexer = lexer
        self.items = lexemes if lexemes is not None else []

    def at(self, j: int) -> _Lexeme | None:
        items = self.items
        while len(items) <= j:
            lexeme = self.lexer.next() if self.lexer is not None else None
            if lexeme is None:
                return None
            if lexeme.kind not in ("ws", "ign"):
                items.append(lexeme)
        return items[j]


# ---- evaluation ------------------------------------------------------------------------------


class _Skip(Exception):
    """Not a claim (malformed, out of bounds, or undecidable)."""


def _bounded(value: _Value) -> _Value:
    if abs(value.numerator) > MAX_MAGNITUDE or value.denominator > MAX_MAGNITUDE:
        raise _Skip
    return value


def _power(base: _Value, exponent: _Value) -> _Value:
    if exponent.denominator != 1:
        raise _Skip
    power = int(exponent)  # exact: the exponent is whole
    if abs(power) > MAX_EXPONENT:
        raise _Skip
    if base == 0 and power < 0:
        raise _Skip
    # Refuse before computing: the result's size is known from the base's.
    if max(abs(base.numerator), base.denominator).bit_length() * abs(power) > 220:
        raise _Skip
    return _bounded(Fraction(base) ** power if power < 0 else base**power)


class _Parser:
    """Recursive descent over significant lexemes.

    expr := term (("+" | "-") term)*
    term := factor (("*" | "/" | "of" | implicit "(") factor)*
    factor := "-" factor | multiplier factor | power
    power := postfix ("^" factor)?
    postfix := primary ("%" | "²" | "squared")*
    primary := number | "(" expr ")" | \\frac{expr}{expr} | number \\frac{..}{..}

    On the right side (``open_end``) the parse stops at the first lexeme that cannot continue
    the expression, and a look past the last lexeme is noted as unsure."""

    def __init__(self, lexemes: _Lexemes, open_end: bool) -> None:
        self.at = lexemes.at
        self.items = lexemes.items
        self.open_end = open_end
        self.i = 0
        self.unsure = False
        self.operators = 0
        self.depth = 0
        self.numbers = 0
        self.percents = 0
        self.percents_of = 0

    def peek(self, ahead: int = 0) -> _Lexeme | None:
        j = self.i + ahead
        lexeme = self.items[j] if j < len(self.items) else self.at(j)
        if lexeme is not None:
            if lexeme.unsure:
                self.unsure = True
            return lexeme
        if self.open_end:
            self.unsure = True
        return None

    def operand_ahead(self, ahead: int) -> bool:
        lexeme = self.peek(ahead)
        if lexeme is None:
            return False
        if lexeme.kind in ("num", "frac", "mult") or (lexeme.kind == "lp"):
            return True
        if lexeme.kind == "op" and lexeme.op == "-" and not lexeme.word:
            after = self.peek(ahead + 1)
            return after is not None and after.glued and after.kind in ("num", "lp", "frac")
        return False

    def count_operator(self) -> None:
        self.operators += 1
        if self.operators > MAX_OPERATORS:
            raise _Skip

    def expr(self) -> _Value:
        value = self.term()[0]
        while True:
            lexeme = self.peek()
            if lexeme is None or lexeme.kind != "op" or lexeme.op not in ("+", "-"):
                return value
            if not self.operand_ahead(1):
                return value
            self.i += 1
            self.count_operator()
            right = self.term()[0]
            value = _bounded(value + right if lexeme.op == "+" else value - right)

    def term(self) -> tuple[_Value, str]:
        value, form = self.factor()
        while True:
            lexeme = self.peek()
            if lexeme is None:
                return value, form
            if lexeme.kind == "op" and lexeme.op in ("*", "/", "of"):
                if lexeme.op == "of" and form not in ("fraction", "percent"):
                    return value, form
                if not self.operand_ahead(1):
                    return value, form
                self.i += 1
                self.count_operator()
                right = self.factor()[0]
                if lexeme.op == "/":
                    if right == 0:
                        raise _Skip
                    value, form = Fraction(value) / right, "fraction"
                else:
                    if lexeme.op == "of" and form == "percent":
                        self.percents_of += 1
                    value, form = value * right, "product"
            elif lexeme.kind == "lp" and lexeme.glued and lexeme.op == "(":
                # 2(3 + 4), (2)(3)
                self.count_operator()
                value, form = value * self.factor()[0], "product"
            else:
                return value, form
            value = _bounded(value)

    def factor(self) -> tuple[_Value, str]:
        lexeme = self.peek()
        if lexeme is None:
            raise _Skip
        if lexeme.kind == "op" and lexeme.op == "-" and not lexeme.word:
            after = self.peek(1)
            if after is None or not after.glued:
                raise _Skip
            self.i += 1
            value, form = self.factor()
            return -value, form
        if lexeme.kind == "mult":
            self.i += 1
            self.count_operator()
            return _bounded((lexeme.value or 0) * self.factor()[0]), "product"
        return self.power()

    def power(self) -> tuple[_Value, str]:
        value, form = self.postfix()
        lexeme = self.peek()
        if lexeme is not None and lexeme.kind == "op" and lexeme.op == "^":
            self.i += 1
            self.count_operator()
            return _power(value, self.factor()[0]), "power"
        return value, form

    def postfix(self) -> tuple[_Value, str]:
        value, form = self.primary()
        while True:
            lexeme = self.peek()
            if lexeme is None:
                return value, form
            if lexeme.kind == "pct":
                self.i += 1
                self.percents += 1
                value, form = Fraction(value, 100), "percent"
            elif lexeme.kind == "sup":
                self.i += 1
                self.count_operator()
                value, form = _power(value, lexeme.value or 0), "power"
            else:
                return value, form

    def primary(self) -> tuple[_Value, str]:
        lexeme = self.peek()
        if lexeme is None:
            raise _Skip
        if lexeme.kind == "num":
            if lexeme.bad or lexeme.value is None:
                raise _Skip
            self.i += 1
            self.numbers += 1
            value = lexeme.value
            after = self.peek()
            if lexeme.plain and after is not None and after.kind == "frac" and after.glued:
                part = self.fraction()  # 3\frac{1}{2}
                if not 0 < part < 1:
                    raise _Skip
                value += part
            return value, "number"
        if lexeme.kind == "lp":
            self.i += 1
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise _Skip
            value = self.expr()
            closer = self.peek()
            if closer is None or closer.kind != "rp" or closer.op != _OPENERS[lexeme.op or "("]:
                raise _Skip
            self.i += 1
            self.depth -= 1
            return value, "group"
        if lexeme.kind == "frac":
            self.count_operator()
            return self.fraction(), "fraction"
        raise _Skip

    def fraction(self) -> _Value:
        self.i += 1  # \frac
        parts = []
        for _ in range(2):
            opener = self.peek()
            if opener is None or opener.kind != "lp" or opener.op != "{":
                raise _Skip
            parts.append(self.primary()[0])
        if parts[1] == 0:
            raise _Skip
        return _bounded(Fraction(parts[0], parts[1]))


# ---- claims ----------------------------------------------------------------------------------

_QUIET = frozenset({"ws", "ign", "close"})
_EXPRESSION_KINDS = frozenset(
    {"num", "op", "lp", "rp", "frac", "pct", "sup", "mult", "ws", "ign", "close"}
)
_NUMBER_TAIL = re.compile(r"[0-9.,]*\Z")
_RETRY = object()


@dataclass
class _Left:
    value: _Value
    start: int
    end: int
    numbers: int
    bare_percents: int


@dataclass
class _Right:
    value: _Value
    start: int
    end: int
    numbers: int
    bare_percents: int
    operators: int
    places: int | None
    first: _Lexeme | None  # a leading numeral followed by an operator (run-on chains)
    unsure: bool


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


def _left_side(text: str, window: int, at: int) -> _Left | None:
    """The expression that ends right before the relation at ``at``, read from ``window``
    (which starts before it: see :func:`_candidate`)."""
    lexemes = _Lexer(text, window, at, right_open=False).lex()
    b = len(lexemes)
    while b > 0 and lexemes[b - 1].kind in _QUIET:
        b -= 1
    a = b
    while a > 0 and lexemes[a - 1].kind in _EXPRESSION_KINDS:
        a -= 1
    # Brackets opened or closed outside the expression are prose: "(so 3 + 4 = 7)", "1) 3 + 4".
    openers: list[int] = []
    for k in range(a, b):
        lexeme = lexemes[k]
        if lexeme.kind == "lp":
            openers.append(k)
        elif lexeme.kind == "rp":
            if openers and _OPENERS[lexemes[openers[-1]].op or "("] == lexeme.op:
                openers.pop()
            else:
                openers.clear()
                a = k + 1
    if openers:
        a = openers[-1] + 1
    while a < b and lexemes[a].kind in _QUIET:
        a += 1
    if a >= b:
        return None
    first = lexemes[a]
    unary = False
    if first.kind == "op":
        following = _next_significant(lexemes, a + 1, b)
        if first.word:
            a = following  # "the value of 3 + 4", "at times 3 + 4"
        elif first.op == "-" and following < b and lexemes[following].glued:
            unary = True
        elif first.op in ("-", "*", "+") and _at_line_start(text, lexemes, a, window):
            a = following  # a list bullet
        else:
            return None  # "x + 2 = 5": a variable before the operator
        if a >= b:
            return None
    # What stands before the expression: a letter written against it is a variable or a
    # function ("3x", "f(2)"), a unary minus after a word may be "x -3".
    p = a - 1
    spaced = False
    while p >= 0 and lexemes[p].kind in ("ws", "ign", "close"):
        spaced = spaced or lexemes[p].kind == "ws"
        p -= 1
    if p >= 0:
        before = lexemes[p]
        if before.kind == "break":
            if before.op == "cmd" or (before.op == "word" and (not spaced or unary)):
                return None
            if before.op == "other" and not spaced:
                if text[before.start] not in _SAFE_BEFORE:
                    return None
                if p > 0 and lexemes[p - 1].end == before.start:
                    if lexemes[p - 1].kind == "num" or lexemes[p - 1].op == "word":
                        return None  # 3:45, a(3 + 4)
        elif before.kind == "rp" and not spaced:
            return None
    significant = [lexeme for lexeme in lexemes[a:b] if lexeme.kind not in _QUIET]
    parser = _Parser(_Lexemes(lexemes=significant), open_end=False)
    try:
        value = parser.expr()
    except _Skip:
        return None
    if parser.i != len(significant) or parser.operators == 0:
        return None
    return _Left(
        value,
        significant[0].start,
        significant[-1].end,
        parser.numbers,
        parser.percents - parser.percents_of,
    )


def _next_significant(lexemes: list[_Lexeme], k: int, limit: int) -> int:
    while k < limit and lexemes[k].kind in _QUIET:
        k += 1
    return k


def _at_line_start(text: str, lexemes: list[_Lexeme], k: int, window: int) -> bool:
    if k == 0:
        return window == 0
    before = lexemes[k - 1]
    return before.kind == "ws" and "\n" in text[before.start : before.end]


def _right_side(text: str, at: int, window: int) -> _Right | object | None:
    """The value stated right after the relation ending at ``at``, read up to ``window``."""
    at_end = window == len(text)
    lexemes = _Lexemes(_Lexer(text, at, window, right_open=True))
    parser = _Parser(lexemes, open_end=True)
    try:
        result = _read_value(text, parser, lexemes)
    except _Skip:
        result = None
    if parser.unsure and not at_end:
        return _RETRY
    if result is not None:
        result.unsure = parser.unsure
    return result


def _read_value(text: str, parser: _Parser, lexemes: _Lexemes) -> _Right | None:
    if not parser.operand_ahead(0):
        return None
    value = parser.expr()
    last = lexemes.items[parser.i - 1]
    after = parser.peek()
    if after is not None:
        if after.glued and after.kind == "break":
            if after.op in ("word", "cmd"):
                return None  # 12x, 5cm, 2\pi
            char = text[after.start]
            if char in "°'′″":
                return None
            if char in ":,.":
                beyond = parser.peek(1)
                if beyond is not None and beyond.kind == "num" and beyond.glued:
                    return None  # 4:00, 4,5
        if after.kind == "op":
            dash = after.op == "-" and not after.glued and not after.word
            if not dash and not after.word:
                return None  # an operator with no operand after it
            if after.word and text[after.start : after.end].lower() == "times":
                return None  # "is 3 times as many"
        if after.kind == "break" and after.op == "word":
            if text[after.start : after.end].lower() in _COMPARISONS:
                return None
    first = lexemes.items[0]
    numbers = parser.numbers
    places = first.places if parser.operators == 0 and numbers == 1 else None
    if places is not None and parser.percents:
        places += 2
    second = lexemes.items[1] if len(lexemes.items) > 1 else None
    leading = (
        first
        if first.kind == "num" and second is not None and second.kind == "op" and not first.bad
        else None
    )
    return _Right(
        value=value,
        start=first.start,
        end=last.end,
        numbers=numbers,
        bare_percents=parser.percents - parser.percents_of,
        operators=parser.operators,
        places=places,
        first=leading,
        unsure=False,
    )


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
