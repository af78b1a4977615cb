"""The characters, words and LaTeX commands the lexer and the claim reader give a meaning
to."""

from __future__ import annotations

from fractions import Fraction

_VULGAR = {
    "½": Fraction(1, 2),
    "⅓": Fraction(1, 3),
    "⅔": Fraction(2, 3),
    "¼": Fraction(1, 4),
    "¾": Fraction(3, 4),
    "⅛": Fraction(1, 8),
}
_SUPERSCRIPTS = {"²": 2, "³": 3}
_OPERATOR_CHARS = {
    "+": "+",
    "-": "-",
    "−": "-",
    "×": "*",
    "*": "*",
    "·": "*",
    "⋅": "*",
    "∙": "*",
    "÷": "/",
    "/": "/",
    "^": "^",
}
_OPERATOR_WORDS = {"plus": "+", "minus": "-", "times": "*", "of": "of"}
_OPERATOR_PAIRS = {"divided": "/", "multiplied": "*"}  # followed by "by"
_PART_WORDS = {"half": 2, "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "tenth": 10}
_MULTIPLIER_WORDS = {"twice": 2, "double": 2, "triple": 3}
_POWER_WORDS = {"squared": 2, "cubed": 3}
_COMMANDS = {
    "\\times": ("op", "*"),
    "\\cdot": ("op", "*"),
    "\\div": ("op", "/"),
    "\\frac": ("frac", None),
    "\\dfrac": ("frac", None),
    "\\tfrac": ("frac", None),
}
_SPACING_COMMANDS = frozenset(
    "\\left \\right \\bigl \\bigr \\Bigl \\Bigr \\big \\Big \\quad \\qquad \\displaystyle "
    "\\textstyle".split()
)
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(")]}")
# Words right after a value that make it part of a comparison, not a result.
_COMPARISONS = frozenset(
    "more less fewer greater smaller larger bigger higher lower than times away short off apart "
    "too extra".split()
)
# Every prefix of a word the lexer or the claim reader gives a meaning to: a last word that is
# none of them stays an ordinary word however the text goes on ("Next", unlike "t" or "mor").
_WORD_PREFIXES = frozenset(
    word[:k]
    for word in (
        *_OPERATOR_WORDS,
        *_OPERATOR_PAIRS,
        *_PART_WORDS,
        *_MULTIPLIER_WORDS,
        *_POWER_WORDS,
        *_COMPARISONS,
        "by",
        "of",
        "x",
        "percent",
    )
    for k in range(1, len(word) + 1)
)
# Characters that may stand right before an expression with nothing between.
_SAFE_BEFORE = frozenset("([{,;:!?\"'“”‘’`>|")
