"""The public functions: :func:`mentions`, :func:`settled_until`, :func:`answer_value`,
:func:`answer_reading`."""

from __future__ import annotations

import re
from fractions import Fraction

from .limits import MAX_TEXT_CHARS, TextTooLong
from .mention import Mention
from .scan import _Scan
from .tokens import _restart


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
