"""What reading a text finds: one :class:`Mention` per number a reader sees."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


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
