"""Every way a text can state a number, for the tutor's answer guard.

The guard reads a tutor reply as it streams and must recognise the problem's final answer in
any form a student would read as that answer: "37.4", "1,250", "3/4", ``\\frac{3}{4}``,
"1 5/12", "75%", "seventy-five", "three quarters", "seven five", "$0.75", "3 h 35 min".
:func:`mentions` lists every number a reader sees, with every value a reader could take it for;
:func:`settled_until` says how much of a growing text can be released because no further text
can change what it states; :func:`answer_value` reads a final answer written in any of the forms.

How it reads. The text is cut into tokens (digit runs, letter runs, whitespace runs, single other
characters); appending text can only lengthen the last token or add new ones. Numbers are then
read in two passes over the tokens, each left to right:

* atoms, which never overlap: numerals (sign, thousands separators, decimals), number words
  ("one hundred and twenty", "three point five", "two thirds", "one and a half") and vulgar
  fraction characters;
* compounds built on atoms, which may overlap them and each other: slash and LaTeX fractions,
  mixed numbers, percentages, money, durations, a numeral with a scale word ("5 million"),
  digits spelled one by one ("7, 5", "seven five"); plus arithmetic chains ("7 x 14 = 98"),
  which state no mention of their own but are held back whole (see below).

Every recognition attempt reads tokens through a few queries, and notes when an answer could
change if text were appended: a query about the last token (a digit or whitespace run that may
grow, or a word that is, or may still become, one the grammar knows: "seve" may become
"seventy") or about a token past the end. :func:`settled_until` is the start of the earliest
such attempt. So what is held back is the trailing run that can still grow into or change a
mention: trailing digits, number words or their prefixes, separators after a number (",", ".",
"/", "-", spaces), an open ``\\frac{``, "$", "and", "point", unit words, and an arithmetic
chain from its first number while an operator or "=" may still be followed by one. An ordinary
word (one the grammar does not know, and no prefix of one) ends every run, so "5 apples" is
settled whole.

Bounds: texts longer than :data:`MAX_TEXT_CHARS` are refused before reading; numerals with more
than :data:`MAX_DIGITS` digits are not read as values; every token is visited a bounded number
of times (maximal munch, and chains and digit sequences are never restarted inside themselves),
and the only regular expression is a tokenizer without backtracking, so time is linear in the
length of the text. Scanning restarts after the last "hard" token (an ordinary word, punctuation
the grammar does not use, a long blank), which no mention spans and no recognition reads past,
so :func:`settled_until` and ``mentions(text, start)`` cost time in the tail only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "MAX_DIGITS",
    "MAX_TEXT_CHARS",
    "Mention",
    "TextTooLong",
    "answer_reading",
    "answer_value",
    "mentions",
    "settled_until",
]

# Longest text read at all (a tutor reply is a few thousand characters).
MAX_TEXT_CHARS = 20_000
# Longest run of digits read as a value (also the most digits spelled one by one in a sequence),
# so that Fraction arithmetic stays cheap.
MAX_DIGITS = 40


class TextTooLong(ValueError):
    """The text is longer than :data:`MAX_TEXT_CHARS`."""


@dataclass(frozen=True)
class Mention:
    """One number a reader sees in a text."""

    start: int
    end: int
    # Every value a reader could take it for, the literal reading first.
    values: tuple[Fraction, ...]
    # The digits in the order written, for numerals and digit-by-digit spellings; "" otherwise.
    digits: str
    # numeral, fraction, latex_fraction, mixed, percent, words, digit_sequence, money, duration,
    # scaled ("5 million")
    kind: str


# ---- vocabulary ---------------------------------------------------------------------------------


class _Words(dict):
    """Words the grammar knows in one place, with every prefix of them: a last word that is a
    prefix may still grow into one of them."""

    def __init__(self, items: dict[str, int] | list[str]):
        super().__init__(items if isinstance(items, dict) else dict.fromkeys(items, 0))
        self.prefixes = frozenset(word[:k] for word in self for k in range(1, len(word) + 1))


_UNIT_NAMES = "zero one two three four five six seven eight nine".split()
_TEEN_NAMES = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_TEN_NAMES = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_UNITS = {name: value for value, name in enumerate(_UNIT_NAMES)}
_BELOW100_VALUES = {
    **_UNITS,
    **{name: 10 + value for value, name in enumerate(_TEEN_NAMES.split())},
    **{name: 20 + 10 * value for value, name in enumerate(_TEN_NAMES)},
}
_ORDINALS = {
    3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth", 9: "ninth",
    10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth", 14: "fourteenth",
    15: "fifteenth", 16: "sixteenth", 17: "seventeenth", 18: "eighteenth", 19: "nineteenth",
    20: "twentieth", 30: "thirtieth", 40: "fortieth", 50: "fiftieth", 60: "sixtieth",
    70: "seventieth", 80: "eightieth", 90: "ninetieth", 100: "hundredth", 1000: "thousandth",
}  # fmt: skip
_DENOMINATOR_VALUES = {"half": 2, "halves": 2, "quarter": 4, "quarters": 4}
for _value, _name in _ORDINALS.items():
    _DENOMINATOR_VALUES[_name] = _DENOMINATOR_VALUES[_name + "s"] = _value

_BELOW100 = _Words(_BELOW100_VALUES)
_TENS = {name for name in _BELOW100_VALUES if name in _TEN_NAMES}
_UNITS_1_9 = _Words({name: value for name, value in _UNITS.items() if value})
_DIGIT_WORDS = _Words(_UNITS)
_HUNDRED = _Words({"hundred": 100})
_SCALES = _Words({"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12})
_DENOMINATORS = _Words(_DENOMINATOR_VALUES)
_A = _Words({"a": 1, "an": 1})
_GROUP_START = _Words({**_BELOW100_VALUES, "a": 1, "an": 1})
_STARTERS = _Words({**_BELOW100_VALUES, "a": 1, "an": 1, "half": 0, "negative": 0})
_AND = _Words(["and"])
_POINT = _Words(["point"])
_PERCENT = _Words(["percent", "pct", "per"])
_CENT = _Words(["cent"])
_MONEY_AFTER = _Words(["cent", "cents", "dollar", "dollars", "bucks"])
_HOURS = {"h", "hr", "hrs", "hour", "hours"}
_MINUTES = {"min", "mins", "minute", "minutes"}
_DURATION_UNITS = _Words([*_HOURS, *_MINUTES])
_MINUTES_AFTER_HOURS = _Words([*_MINUTES, "m"])
_SCALE_AFTER_NUMERAL = _Words({"hundred": 100, **_SCALES})
_LATEX_FRACTIONS = _Words(["frac", "dfrac", "tfrac"])
_LATEX_OPERATORS = _Words(["times", "cdot", "div"])
_WORD_OPERATORS = _Words(["x", "times"])
_ALL_WORDS = _Words(
    [
        *_STARTERS, *_SCALES, *_HUNDRED, *_DENOMINATORS, *_AND, *_POINT, *_PERCENT, *_CENT,
        *_MONEY_AFTER, *_DURATION_UNITS, *_MINUTES_AFTER_HOURS, *_LATEX_FRACTIONS,
        *_LATEX_OPERATORS, *_WORD_OPERATORS,
    ]
)  # fmt: skip

_VULGAR = {
    "½": Fraction(1, 2), "⅓": Fraction(1, 3), "⅔": Fraction(2, 3), "¼": Fraction(1, 4),
    "¾": Fraction(3, 4), "⅕": Fraction(1, 5), "⅖": Fraction(2, 5), "⅗": Fraction(3, 5),
    "⅘": Fraction(4, 5), "⅙": Fraction(1, 6), "⅚": Fraction(5, 6), "⅐": Fraction(1, 7),
    "⅛": Fraction(1, 8), "⅜": Fraction(3, 8), "⅝": Fraction(5, 8), "⅞": Fraction(7, 8),
    "⅑": Fraction(1, 9), "⅒": Fraction(1, 10),
}  # fmt: skip
_MINUS = "-−"
_SLASHES = "/⁄"
_CURRENCIES = "$€£"
_OPERATORS = "+-−×*·÷/⁄=^"
# Punctuation that some recognition reads; any other character ends every run.
_MIXED_AFTER = "\\" + "".join(_VULGAR)  # what may follow a whole number in a mixed one
_CHAIN_AFTER = _OPERATORS + "\\"
_ATOM_PUNCT = frozenset(_MINUS + "." + "".join(_VULGAR))  # punctuation that may start an atom
_GRAMMAR_PUNCT = frozenset(".,{}\\%¢" + _MINUS + _SLASHES + _CURRENCIES + _OPERATORS) | set(_VULGAR)

# ---- tokens -------------------------------------------------------------------------------------

_D, _W, _S, _P = 1, 2, 3, 4  # digit run, letter run, whitespace run, any other single character
# Vulgar fractions are numeric characters that \w would put in a letter run.
_TOKEN = re.compile(r"(\d+)|([^\W\d_\u00bc-\u00be\u2150-\u215e]+)|(\s+)|(.)", re.DOTALL)


def _short_blank(blank: str) -> bool:
    """Whether a whitespace run may stand inside a mention ("1 5/12", "3 hours and 35")."""
    return len(blank) <= 3 and blank.count("\n") <= 1


def _ascii_digits(run: str) -> str:
    return run if run.isascii() else "".join(str(int(char)) for char in run)


def _is_hard(kind: int, token: str, open_word: bool) -> bool:
    """Whether no mention spans this token and no recognition reads past it. ``open_word``: the
    token ends a growing text, so a word must not be the start of one the grammar knows."""
    if kind == _W:
        return token not in (_ALL_WORDS.prefixes if open_word else _ALL_WORDS)
    if kind == _P:
        return token not in _GRAMMAR_PUNCT
    if kind == _S:
        return not _short_blank(token)
    return False


def _restart(text: str, pos: int, streaming: bool) -> int:
    """The end of the last hard token that ends at or before ``pos`` (0 when there is none):
    reading from there finds exactly the mentions that reading from 0 finds after it."""
    window = 128
    while True:
        low = max(0, pos - window)
        best = -1
        first = low > 0  # the first token of a window may be the tail of a longer one
        for match in _TOKEN.finditer(text, low):
            end = match.end()
            if end > pos:
                break
            if first:
                first = False
                continue
            kind = match.lastindex or _P  # every alternative of _TOKEN is a group
            token = match.group().lower() if kind == _W else match.group()
            if _is_hard(kind, token, streaming and end == len(text)):
                best = end
        if best >= 0:
            return best
        if low == 0:
            return 0
        window *= 4


# ---- reading ------------------------------------------------------------------------------------


class _Atom:
    __slots__ = ("digits", "end", "integer", "kind", "plain", "signed", "start", "value")

    def __init__(self, kind: str, start: int, end: int, value: Fraction | None, digits: str = ""):
        self.kind = kind  # numeral, words, fraction (a vulgar fraction character) or dead
        self.start = start  # token indices, end exclusive
        self.end = end
        self.value = value  # None for a dead atom: a numeral with too many digits
        self.digits = digits
        self.integer = False  # an integer numeral without separators, maybe signed
        self.plain = False  # ... and unsigned
        self.signed = False

    @property
    def number(self) -> Fraction:
        """The value of a live atom: ``_Scan.atom`` never hands out a dead one."""
        assert self.value is not None, "a dead atom has no value"
        return self.value


class _Scan:
    """One left-to-right reading of ``text`` from ``origin`` (a token boundary)."""

    def __init__(self, text: str, origin: int):
        self.text = text
        kinds: list[int] = []
        starts: list[int] = []
        ends: list[int] = []
        tokens: list[str] = []
        short: list[bool] = []  # whitespace that may stand inside a mention
        for match in _TOKEN.finditer(text, origin):
            kind = match.lastindex or _P
            token = match.group()
            kinds.append(kind)
            starts.append(match.start())
            ends.append(match.end())
            tokens.append(token.lower() if kind == _W else token)
            short.append(kind == _S and _short_blank(token))
        self.kinds, self.starts, self.ends, self.tokens = kinds, starts, ends, tokens
        self.short = short
        self.n = len(kinds)
        self.last = self.n - 1
        self.dirty = False
        self.unstable_from = len(text)
        self.atoms: dict[int, _Atom] = {}
        self.reliable = self.n  # atoms at token indices from here on may still change
        self.found: list[Mention] = []
        self._read_atoms()
        self._read_compounds()

    # -- queries: each notes (self.dirty) when appended text could change its answer --

    def kind(self, i: int) -> int:
        if i >= self.n:
            self.dirty = True
            return 0
        return self.kinds[i]

    def punct(self, i: int, chars: str) -> bool:
        return self.kind(i) == _P and self.tokens[i] in chars

    def word(self, i: int, table: _Words) -> str | None:
        if self.kind(i) != _W:
            return None
        token = self.tokens[i]
        if i == self.last and token in table.prefixes:
            self.dirty = True
        return token if token in table else None

    def run(self, i: int) -> str:
        """The text of a digit run."""
        if i == self.last:
            self.dirty = True
        return self.tokens[i]

    def space(self, i: int) -> bool:
        if i >= self.last:
            if i > self.last:
                self.dirty = True
                return False
            if self.kinds[i] == _S:
                self.dirty = True
        return self.short[i]

    def skip_space(self, i: int) -> int:
        return i + 1 if self.space(i) else i

    def atom(self, i: int) -> _Atom | None:
        if i >= self.reliable:
            self.dirty = True
        atom = self.atoms.get(i)
        return None if atom is None or atom.kind == "dead" else atom

    def sign_ok(self, i: int) -> bool:
        """Whether a minus sign at token i is a sign rather than subtraction or a hyphen."""
        prev = self.prev_char(i)
        return not prev or not (prev.isalnum() or prev in ")]}_")

    def prev_char(self, i: int) -> str:
        pos = self.starts[i]
        return self.text[pos - 1] if pos else ""

    def attempt(self, i: int, read, *args):
        """Run one recognition that starts at token i, noting whether it is settled."""
        self.dirty = False
        result = read(*args)
        if self.dirty:
            self.unstable_from = min(self.unstable_from, self.starts[i])
        return result

    def emit(self, kind: str, first: int, end: int, values, digits: str = "") -> None:
        unique = tuple(values) if len(values) == 1 else tuple(dict.fromkeys(values))
        self.found.append(Mention(self.starts[first], self.ends[end - 1], unique, digits, kind))

    # -- atoms --

    def _read_atoms(self) -> None:
        kinds, tokens, starters = self.kinds, self.tokens, _STARTERS.prefixes
        i = 0
        while i < self.n:
            kind = kinds[i]
            if (
                (kind == _W and tokens[i] not in starters)
                or kind == _S
                or (kind == _P and tokens[i] not in _ATOM_PUNCT)
            ):
                i += 1  # nothing starts here, now or after any appended text
                continue
            self.dirty = False
            atom = self._atom(i)
            if self.dirty:
                self.reliable = min(self.reliable, i)
                self.unstable_from = min(self.unstable_from, self.starts[i])
            if atom is None:
                i += 1
                continue
            self.atoms[i] = atom
            if atom.kind == "numeral":
                self.emit("numeral", i, atom.end, (atom.value,), atom.digits)
            elif atom.kind in ("words", "fraction"):
                self.emit(atom.kind, i, atom.end, (atom.value,))
            i = atom.end

    def _atom(self, i: int) -> _Atom | None:
        kind = self.kinds[i]
        if kind == _W:
            read = self._words(i)
            return None if read is None else _Atom("words", i, read[1], read[0])
        if kind == _D:
            return self._numeral(i)
        if kind == _P:
            char = self.tokens[i]
            if char in _VULGAR:
                return _Atom("fraction", i, i + 1, _VULGAR[char])
            if char in _MINUS or char == ".":
                return self._numeral(i)
        return None

    def _numeral(self, i: int) -> _Atom | None:
        j = i
        negative = False
        if self.punct(j, _MINUS):
            if not self.sign_ok(j):
                return None
            negative = True
            j += 1
        whole = ""
        grouped = False
        if self.kind(j) == _D:
            whole = self.run(j)
            j += 1
            if len(whole) <= 3:
                while self.punct(j, ",") and self.kind(j + 1) == _D and len(self.run(j + 1)) == 3:
                    whole += self.tokens[j + 1]
                    grouped = True
                    j += 2
        elif not (self.punct(j, ".") and not self.prev_char(j).isdigit()):
            return None
        fraction = ""
        if self.punct(j, ".") and self.kind(j + 1) == _D:
            fraction = self.run(j + 1)
            j += 2
        if not whole and not fraction:
            return None
        if len(whole) + len(fraction) > MAX_DIGITS:
            return _Atom("dead", i, j, None)
        value = Fraction(int(whole or "0"))
        if fraction:
            value += Fraction(int(fraction), 10 ** len(fraction))
        atom = _Atom(
            "numeral", i, j, -value if negative else value, _ascii_digits(whole + fraction)
        )
        atom.integer = not (grouped or fraction)
        atom.plain = atom.integer and not negative
        atom.signed = negative
        return atom

    # -- number words --

    def sep_word(self, i: int) -> int | None:
        """The index of the word after a separator (a short blank or a hyphen) at i."""
        if not (self.space(i) or self.punct(i, "-")):
            return None
        return i + 1 if self.kind(i + 1) == _W else None

    def _below100(self, i: int) -> tuple[int, int] | None:
        name = self.word(i, _BELOW100)
        if name is None:
            return None
        value = _BELOW100[name]
        if name in _TENS:
            j = self.sep_word(i + 1)
            unit = None if j is None else self.word(j, _UNITS_1_9)
            if j is not None and unit is not None:
                return value + _UNITS_1_9[unit], j + 1
        return value, i + 1

    def _group(self, i: int, allow_a: bool) -> tuple[int, int] | None:
        """A number below a thousand ("one hundred and twenty", "a hundred", "twelve hundred");
        a lone "a" before a scale word counts as one."""
        name = self.word(i, _GROUP_START)
        if name is None:
            return None
        if name in _A:
            j = self.sep_word(i + 1) if allow_a else None
            if j is None:
                return None
            if self.word(j, _HUNDRED) is None:
                return (1, i + 1) if self.word(j, _SCALES) else None
            value, end = 100, j + 1
        else:
            value, end = self._below100(i)  # type: ignore[misc]
            j = self.sep_word(end)
            if value == 0 or j is None or self.word(j, _HUNDRED) is None:
                return value, end
            value, end = value * 100, j + 1
        k = self.sep_word(end)
        if k is not None and self.word(k, _AND):
            k = self.sep_word(k + 1)
        rest = None if k is None else self._below100(k)
        if rest is not None and rest[0] > 0:
            return value + rest[0], rest[1]
        return value, end

    def _integer(self, i: int) -> tuple[int, int] | None:
        total, largest, pos = 0, 10**15, i
        best = None
        while True:
            group = self._group(pos, allow_a=pos == i)
            if group is None:
                break
            value, end = group
            j = self.sep_word(end)
            scale = None if j is None else self.word(j, _SCALES)
            if scale is not None and pos != i and _SCALES[scale] >= largest:
                break  # "a thousand, two thousand": two numbers
            if j is None or scale is None or value == 0 or _SCALES[scale] >= largest:
                best = (total + value, end)
                break
            total += value * _SCALES[scale]
            largest = _SCALES[scale]
            best = (total, j + 1)
            after = j + 2 if self.punct(j + 1, ",") else j + 1  # "one thousand, two hundred"
            k = self.sep_word(after)
            if k is not None and self.word(k, _AND):
                k = self.sep_word(k + 1)
            if k is None:
                break
            pos = k
        return best

    def _count_and_denominator(self, i: int) -> tuple[Fraction, int] | None:
        """ "a half", "three quarters", "five twelfths" starting at word i."""
        if self.word(i, _A):
            count, end = 1, i + 1
        else:
            read = self._integer(i)
            if read is None:
                return None
            count, end = read
        j = self.sep_word(end)
        name = None if j is None else self.word(j, _DENOMINATORS)
        if j is None or name is None:
            return None
        return Fraction(count, _DENOMINATORS[name]), j + 1

    def _words(self, i: int) -> tuple[Fraction, int] | None:
        name = self.word(i, _STARTERS)
        if name is None:
            return None
        sign = 1
        if name == "negative":
            j = self.sep_word(i + 1)
            if j is None or self.word(j, _STARTERS) in (None, "negative"):
                return None
            sign, i = -1, j
        fraction = self._count_and_denominator(i)
        if fraction is not None:
            return sign * fraction[0], fraction[1]
        if self.word(i, _STARTERS) == "half":
            return Fraction(sign, 2), i + 1
        read = self._integer(i)
        if read is None:
            return None
        whole, end = read
        j = self.sep_word(end)
        if j is not None and self.word(j, _POINT):
            digits = ""
            k = self.sep_word(j + 1)
            stop = end
            while k is not None and len(digits) < MAX_DIGITS:
                digit = self.word(k, _DIGIT_WORDS)
                if digit is None:
                    break
                digits += str(_UNITS[digit])
                stop = k + 1
                k = self.sep_word(k + 1)
            if digits:
                value = whole + Fraction(int(digits), 10 ** len(digits))
                return sign * value, stop
        elif j is not None and self.word(j, _AND):
            k = self.sep_word(j + 1)
            fraction = None if k is None else self._count_and_denominator(k)
            if fraction is not None and fraction[0] < 1:
                return sign * (whole + fraction[0]), fraction[1]
        return Fraction(sign * whole), end

    # -- compounds --

    def _read_compounds(self) -> None:
        sequence_until = chain_until = 0
        for i in range(self.n):
            atom = self.atoms.get(i)
            if atom is not None and atom.kind != "dead":
                # Every compound here starts where the atom does: one attempt for all of them.
                self.dirty = False
                sequence_until, chain_until = self._compounds_at(
                    i, atom, sequence_until, chain_until
                )
                if self.dirty:
                    self.unstable_from = min(self.unstable_from, self.starts[i])
            elif self.kinds[i] == _P:
                char = self.tokens[i]
                if char in _CURRENCIES or char == "\\":
                    found = self.attempt(i, self._money_before, i)
                    if found is not None:
                        self.emit("money", i, found[1], (found[0],))
                if char == "\\" or char in _MINUS:
                    found = self.attempt(i, self._latex, i)
                    if found is not None:
                        self.emit("latex_fraction", i, found[1], (found[0],))

    def _compounds_at(
        self, i: int, atom: _Atom, sequence_until: int, chain_until: int
    ) -> tuple[int, int]:
        """The compounds that start with the atom at i. Each reading is tried only when the
        token after the atom is one it can accept: the others would fail, and fail settled."""
        j = self.skip_space(atom.end)
        kind = self.kind(j)
        after = self.tokens[j] if kind == _P else ""
        word_after = kind == _W
        if atom.kind == "numeral":
            if after and after in _SLASHES:
                found = self._slash(i)
                if found is not None:
                    self.emit("fraction", i, found[1], (found[0],))
            if atom.integer and (kind == _D or word_after or (after and after in _MIXED_AFTER)):
                found = self._mixed(i)
                if found is not None:
                    self.emit("mixed", i, found[1], (found[0],))
            if word_after and j != atom.end:
                found = self._scaled(i)
                if found is not None:
                    self.emit("scaled", i, found[1], (found[0],))
        if atom.kind in ("numeral", "words") and (word_after or (after and after in "%\\¢")):
            for kind_name, read in (
                ("percent", self._percent),
                ("money", self._money_after),
                ("duration", self._duration),
            ):
                quantities = read(i)
                if quantities is not None:
                    self.emit(kind_name, i, quantities[1], quantities[0])
        if i >= sequence_until:
            sequence = self._sequence(i)
            if sequence is not None:
                values, end, digits = sequence
                self.emit("digit_sequence", i, end, values, digits)
                sequence_until = end
        if (
            i >= chain_until
            and atom.kind == "numeral"
            and (word_after or (after and after in _CHAIN_AFTER))
        ):
            chain_until = self._chain(i)
        return sequence_until, chain_until

    def _base(self, i: int, kinds=("numeral", "words")) -> _Atom | None:
        atom = self.atom(i)
        return atom if atom is not None and atom.kind in kinds else None

    def _slash(self, i: int, proper: bool = False) -> tuple[Fraction, int] | None:
        top = self._base(i, ("numeral",))
        if top is None or (proper and not top.plain):
            return None
        j = self.skip_space(top.end)
        if not self.punct(j, _SLASHES):
            return None
        bottom = self._base(self.skip_space(j + 1), ("numeral",))
        if bottom is None or bottom.number == 0 or (proper and not bottom.plain):
            return None
        value = top.number / bottom.number
        if proper and not 0 < value < 1:
            return None
        return value, bottom.end

    def _brace(self, i: int) -> tuple[_Atom, int] | None:
        if not self.punct(i, "{"):
            return None
        inner = self._base(self.skip_space(i + 1), ("numeral",))
        if inner is None:
            return None
        j = self.skip_space(inner.end)
        return (inner, j + 1) if self.punct(j, "}") else None

    def _latex(self, i: int, proper: bool = False) -> tuple[Fraction, int] | None:
        j, negative = i, False
        if self.punct(j, _MINUS):
            if proper or not self.sign_ok(j):
                return None
            negative, j = True, j + 1
        if not self.punct(j, "\\") or self.word(j + 1, _LATEX_FRACTIONS) is None:
            return None
        j = self.skip_space(j + 2)
        top: int | Fraction
        bottom: int | Fraction
        if self.kind(j) == _D:  # \frac34
            run = self.run(j)
            if len(run) != 2 or run[1] == "0":
                return None
            top, bottom, end = int(run[0]), int(run[1]), j + 1
            plain = True
        else:
            first = self._brace(j)
            second = None if first is None else self._brace(self.skip_space(first[1]))
            if first is None or second is None or second[0].number == 0:
                return None
            top, bottom, end = first[0].number, second[0].number, second[1]
            plain = first[0].plain and second[0].plain
        value = Fraction(top) / Fraction(bottom)
        if proper and not (plain and 0 < value < 1):
            return None
        return (-value if negative else value), end

    def _proper_fraction(self, i: int) -> tuple[Fraction, int] | None:
        atom = self.atom(i)
        if atom is not None and atom.kind == "fraction":
            return atom.number, atom.end
        return self._slash(i, proper=True) or self._latex(i, proper=True)

    def _mixed(self, i: int) -> tuple[Fraction, int] | None:
        whole = self._base(i, ("numeral",))
        if whole is None or not whole.integer:
            return None
        found = self._proper_fraction(self.skip_space(whole.end))
        if found is None and self.space(whole.end) and self.word(whole.end + 1, _AND):
            j = whole.end + 2
            if self.space(j):
                found = self._proper_fraction(j + 1)
        if found is None:
            return None
        size = abs(whole.number) + found[0]
        return (-size if whole.signed else size), found[1]

    def _scaled(self, i: int) -> tuple[Fraction, int] | None:
        number = self._base(i, ("numeral",))
        if number is None or not self.space(number.end):
            return None
        scale = self.word(number.end + 1, _SCALE_AFTER_NUMERAL)
        if scale is None:
            return None
        return number.number * _SCALE_AFTER_NUMERAL[scale], number.end + 2

    def _percent(self, i: int) -> tuple[tuple[Fraction, ...], int] | None:
        number = self._base(i)
        if number is None:
            return None
        j = self.skip_space(number.end)
        end = None
        if self.punct(j, "%"):
            end = j + 1
        elif self.punct(j, "\\") and self.punct(j + 1, "%"):
            end = j + 2
        else:
            name = self.word(j, _PERCENT)
            if name == "per":
                if self.space(j + 1) and self.word(j + 2, _CENT):
                    end = j + 3
            elif name is not None:
                end = j + 1
        if end is None:
            return None
        return (number.number, number.number / 100), end

    def _money_after(self, i: int) -> tuple[tuple[Fraction, ...], int] | None:
        number = self._base(i)
        if number is None:
            return None
        j = self.skip_space(number.end)
        if self.punct(j, "¢"):
            return (number.number / 100, number.number), j + 1
        name = self.word(j, _MONEY_AFTER)
        if name is None:
            return None
        if name.startswith("cent"):
            return (number.number / 100, number.number), j + 1
        return (number.number,), j + 1

    def _money_before(self, i: int) -> tuple[Fraction, int] | None:
        j = i + 1
        if self.tokens[i] == "\\":
            if not self.punct(j, "$"):
                return None
            j += 1
        number = self._base(self.skip_space(j), ("numeral",))
        return None if number is None else (number.number, number.end)

    def _duration(self, i: int) -> tuple[tuple[Fraction, ...], int] | None:
        number = self._base(i)
        if number is None or number.number < 0:
            return None
        j = self.skip_space(number.end)
        unit = self.word(j, _DURATION_UNITS)
        if unit is None:
            return None
        if unit in _MINUTES:
            return (number.number, number.number / 60), j + 1
        hours_end = j + 1
        k = self.skip_space(hours_end)
        if self.punct(k, ",") or self.word(k, _AND):
            k = self.skip_space(k + 1)
        minutes = self._base(k)
        if minutes is not None and minutes.number >= 0:
            m = self.skip_space(minutes.end)
            if self.word(m, _MINUTES_AFTER_HOURS) is not None:
                total = number.number * 60 + minutes.number
                return (total, total / 60), m + 1
        return (number.number, number.number * 60), hours_end

    def _digit(self, i: int) -> _Atom | None:
        """A digit written alone ("7", "seven") that is not part of a fraction or decimal."""
        atom = self.atom(i)
        if atom is None or atom.end != i + 1:
            return None
        if atom.kind == "words":
            return atom if self.tokens[i] in _DIGIT_WORDS else None
        if atom.kind != "numeral" or not atom.plain or len(atom.digits) != 1:
            return None
        prev = self.prev_char(i)
        if prev and prev in "/⁄.":
            return None
        return None if self.punct(self.skip_space(i + 1), _SLASHES) else atom

    def _sequence(self, i: int) -> tuple[tuple[Fraction, ...], int, str] | None:
        first = self._digit(i)
        if first is None:
            return None
        elements = [first]
        seps = []
        pos = first.end
        while len(elements) < MAX_DIGITS:
            if self.punct(pos, ","):
                j = self.skip_space(pos + 1)
            elif self.space(pos) or self.punct(pos, "-"):
                j = pos + 1
            else:
                break
            element = self._digit(j)
            if element is None:
                break
            elements.append(element)
            seps.append(self.text[self.ends[pos - 1] : self.starts[j]])
            pos = element.end
        if len(elements) < 2:
            return None
        digits = "".join(
            e.digits if e.kind == "numeral" else str(_UNITS[self.tokens[e.start]]) for e in elements
        )
        values = [Fraction(int(digits))]
        if seps == [","] and all(e.kind == "numeral" for e in elements):
            values.append(Fraction(int(digits[0]) * 10 + int(digits[1]), 10))  # a decimal comma
        return tuple(values), pos, digits

    def _chain(self, i: int) -> int:
        """An arithmetic chain ("7 x 14 = 98") from the numeral at i; returns where it ends. It
        states no mention: it is read only so that an unfinished one is held back whole."""
        pos = self.atom(i).end  # type: ignore[union-attr]
        while True:
            j = self.skip_space(pos)
            signed = self.atom(j)
            if signed is not None and signed.signed:  # "3 -5": a minus read as a sign
                pos = signed.end
                continue
            if self.punct(j, _OPERATORS):
                j += 1
            elif self.word(j, _WORD_OPERATORS) is not None:
                j += 1
            elif self.punct(j, "\\") and self.word(j + 1, _LATEX_OPERATORS) is not None:
                j += 2
            else:
                return pos
            j = self.skip_space(j)
            operand = self.atom(j)
            if operand is None:
                latex = self._latex(j)
                if latex is None:
                    return pos
                pos = latex[1]
            else:
                pos = operand.end


# ---- public API ---------------------------------------------------------------------------------


def _require_size(text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLong(f"the text is longer than {MAX_TEXT_CHARS} characters")


def _sorted(found: list[Mention]) -> list[Mention]:
    return sorted(found, key=lambda m: (m.start, m.end, m.kind, m.values))


def mentions(text: str, start: int = 0) -> list[Mention]:
    """Every number a reader sees in ``text`` that starts at or after ``start``, by position.

    Mentions may overlap: "1 5/12" is a mixed number and holds the fraction "5/12" and the
    numerals 1, 5 and 12. Reading starts after the last token before ``start`` that no mention
    spans, so scanning only the tail of a growing text costs time in that tail.
    """
    _require_size(text)
    origin = _restart(text, start, streaming=False) if start > 0 else 0
    found = _Scan(text, origin).found
    return _sorted([m for m in found if m.start >= start])


def settled_until(text: str) -> int:
    """The largest index i such that no text appended to ``text`` can change the mentions that
    start before i or add one that starts before i (see the module docstring for the rule)."""
    _require_size(text)
    origin = _restart(text, len(text), streaming=True)
    return min(_Scan(text, origin).unstable_from, len(text))


_WRAPPERS = re.compile(r"\$(.+)\$|\\\((.+)\\\)|\\\[(.+)\\\]|\\boxed\{(.+)\}", re.DOTALL)


def answer_value(answer: str) -> Fraction | None:
    """The exact value of a final answer written as one number in any form that
    :func:`mentions` reads ("1 5/12", "seventy-five", "$0.75", "75%" (literal: 75)); None when
    it is not a single number (an expression, "5 or 6", text, digits spelled one by one)."""
    reading = answer_reading(answer)
    return reading.values[0] if reading is not None else None


def answer_reading(answer: str) -> Mention | None:
    """The one mention that is the whole answer (after stripping a final ".", ``$...$``,
    ``\\(...\\)``, ``\\boxed{}``), with every value a reader could take it for ("75%": 75 and
    3/4); None when the answer is not a single number. Its span is in the stripped text."""
    _require_size(answer)
    text = answer.strip()
    for _ in range(3):
        text = text.rstrip(".").strip()
        wrapped = _WRAPPERS.fullmatch(text)
        if wrapped is None:
            break
        text = next(group for group in wrapped.groups() if group is not None).strip()
    whole = [
        m
        for m in mentions(text)
        if m.start == 0 and m.end == len(text) and m.kind != "digit_sequence"
    ]
    if len({m.values[0] for m in whole}) != 1:
        return None
    return max(whole, key=lambda m: len(m.values))
