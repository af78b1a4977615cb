"""The second reading pass: compounds built on atoms (fractions, mixed numbers, percentages,
money, durations, scaled numerals, digit sequences) and arithmetic chains; :class:`_Scan`
runs both passes."""

from __future__ import annotations

from fractions import Fraction

from .atoms import _Atoms
from .limits import MAX_DIGITS
from .tokens import _D, _P, _W, _Atom
from .vocabulary import (
    _AND,
    _CENT,
    _CHAIN_AFTER,
    _CURRENCIES,
    _DIGIT_WORDS,
    _DURATION_UNITS,
    _LATEX_FRACTIONS,
    _LATEX_OPERATORS,
    _MINUS,
    _MINUTES,
    _MINUTES_AFTER_HOURS,
    _MIXED_AFTER,
    _MONEY_AFTER,
    _OPERATORS,
    _PERCENT,
    _SCALE_AFTER_NUMERAL,
    _SLASHES,
    _UNITS,
    _WORD_OPERATORS,
)


class _Scan(_Atoms):
    """One left-to-right reading of ``text`` from ``origin`` (a token boundary)."""

    def __init__(self, text: str, origin: int):
        super().__init__(text, origin)
        self._read_atoms()
        self._read_compounds()

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
