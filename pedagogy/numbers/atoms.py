"""The first reading pass: atoms, which never overlap (numerals, number words, vulgar
fraction characters)."""

from __future__ import annotations

from fractions import Fraction

from .limits import MAX_DIGITS
from .tokens import _D, _P, _S, _W, _ascii_digits, _Atom, _Tokens
from .vocabulary import (
    _A,
    _AND,
    _ATOM_PUNCT,
    _BELOW100,
    _DENOMINATORS,
    _DIGIT_WORDS,
    _GROUP_START,
    _HUNDRED,
    _MINUS,
    _POINT,
    _SCALES,
    _STARTERS,
    _TENS,
    _UNITS,
    _UNITS_1_9,
    _VULGAR,
)


class _Atoms(_Tokens):
    """The atoms of the text, found left to right (:meth:`_read_atoms`)."""

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
