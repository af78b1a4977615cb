"""The tokens of a text: the tokenizer, hard tokens and restart points, and the queries
(:class:`_Tokens`) that every recognition reads tokens through, noting when text appended
later could change the answer."""

from __future__ import annotations

import re
from fractions import Fraction

from .mention import Mention
from .vocabulary import _ALL_WORDS, _GRAMMAR_PUNCT, _Words

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
        """The value of a live atom: ``_Tokens.atom`` never hands out a dead one."""
        assert self.value is not None, "a dead atom has no value"
        return self.value


class _Tokens:
    """The tokens of ``text`` from ``origin`` (a token boundary), with the queries that every
    recognition reads them through. :class:`~.atoms._Atoms` and :class:`~.scan._Scan` build the
    two reading passes on it."""

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
