"""The bounds on reading (see the package docstring)."""

from __future__ import annotations

# Longest text read at all (a tutor reply is a few thousand characters).
MAX_TEXT_CHARS = 20_000
# Longest run of digits read as a value (also the most digits spelled one by one in a sequence),
# so that Fraction arithmetic stays cheap.
MAX_DIGITS = 40


class TextTooLong(ValueError):
    """The text is longer than :data:`MAX_TEXT_CHARS`."""
