"""The two sides of a relation: the expression that ends right before it and the value
stated right after it."""

from __future__ import annotations

from dataclasses import dataclass

from .evaluation import _Parser, _Skip
from .lexer import _Lexeme, _Lexemes, _Lexer, _Value
from .vocabulary import _COMPARISONS, _OPENERS, _SAFE_BEFORE

_QUIET = frozenset({"ws", "ign", "close"})
_EXPRESSION_KINDS = frozenset(
    {"num", "op", "lp", "rp", "frac", "pct", "sup", "mult", "ws", "ign", "close"}
)
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


def _left_side(text: str, window: int, at: int) -> _Left | None:
    """The expression that ends right before the relation at ``at``, read from ``window``
    (which starts before it: see :func:`.claims._candidate`)."""
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
