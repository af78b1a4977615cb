"""Raw tokens and the lexemes of the expression grammar built from them, read lazily and
noting what text still to come could change."""

from __future__ import annotations

import re
from fractions import Fraction

from .limits import MAX_DIGITS
from .vocabulary import (
    _CLOSERS,
    _COMMANDS,
    _MULTIPLIER_WORDS,
    _OPENERS,
    _OPERATOR_CHARS,
    _OPERATOR_PAIRS,
    _OPERATOR_WORDS,
    _PART_WORDS,
    _POWER_WORDS,
    _SPACING_COMMANDS,
    _SUPERSCRIPTS,
    _VULGAR,
    _WORD_PREFIXES,
)

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
