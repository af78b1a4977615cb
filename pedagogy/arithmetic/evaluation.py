"""Exact evaluation of an expression's lexemes (:class:`fractions.Fraction`), with size
bounds: never ``eval``."""

from __future__ import annotations

from fractions import Fraction

from .lexer import _Lexeme, _Lexemes, _Value
from .limits import MAX_EXPONENT, MAX_MAGNITUDE, MAX_NESTING, MAX_OPERATORS
from .vocabulary import _OPENERS


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
