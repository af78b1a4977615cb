"""The bounds that keep reading linear and evaluation cheap (see the package docstring)."""

from __future__ import annotations

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
