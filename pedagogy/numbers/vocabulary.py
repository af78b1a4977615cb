"""The words and characters the number grammar knows, each word table with its prefixes."""

from __future__ import annotations

from fractions import Fraction


class _Words(dict):
    """Words the grammar knows in one place, with every prefix of them: a last word that is a
    prefix may still grow into one of them."""

    def __init__(self, items: dict[str, int] | list[str]):
        super().__init__(items if isinstance(items, dict) else dict.fromkeys(items, 0))
        self.prefixes = frozenset(word[:k] for word in self for k in range(1, len(word) + 1))


_UNIT_NAMES = "zero one two three four five six seven eight nine".split()
_TEEN_NAMES = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_TEN_NAMES = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_UNITS = {name: value for value, name in enumerate(_UNIT_NAMES)}
_BELOW100_VALUES = {
    **_UNITS,
    **{name: 10 + value for value, name in enumerate(_TEEN_NAMES.split())},
    **{name: 20 + 10 * value for value, name in enumerate(_TEN_NAMES)},
}
_ORDINALS = {
    3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth", 9: "ninth",
    10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth", 14: "fourteenth",
    15: "fifteenth", 16: "sixteenth", 17: "seventeenth", 18: "eighteenth", 19: "nineteenth",
    20: "twentieth", 30: "thirtieth", 40: "fortieth", 50: "fiftieth", 60: "sixtieth",
    70: "seventieth", 80: "eightieth", 90: "ninetieth", 100: "hundredth", 1000: "thousandth",
}  # fmt: skip
_DENOMINATOR_VALUES = {"half": 2, "halves": 2, "quarter": 4, "quarters": 4}
for _value, _name in _ORDINALS.items():
    _DENOMINATOR_VALUES[_name] = _DENOMINATOR_VALUES[_name + "s"] = _value

_BELOW100 = _Words(_BELOW100_VALUES)
_TENS = {name for name in _BELOW100_VALUES if name in _TEN_NAMES}
_UNITS_1_9 = _Words({name: value for name, value in _UNITS.items() if value})
_DIGIT_WORDS = _Words(_UNITS)
_HUNDRED = _Words({"hundred": 100})
_SCALES = _Words({"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12})
_DENOMINATORS = _Words(_DENOMINATOR_VALUES)
_A = _Words({"a": 1, "an": 1})
_GROUP_START = _Words({**_BELOW100_VALUES, "a": 1, "an": 1})
_STARTERS = _Words({**_BELOW100_VALUES, "a": 1, "an": 1, "half": 0, "negative": 0})
_AND = _Words(["and"])
_POINT = _Words(["point"])
_PERCENT = _Words(["percent", "pct", "per"])
_CENT = _Words(["cent"])
_MONEY_AFTER = _Words(["cent", "cents", "dollar", "dollars", "bucks"])
_HOURS = {"h", "hr", "hrs", "hour", "hours"}
_MINUTES = {"min", "mins", "minute", "minutes"}
_DURATION_UNITS = _Words([*_HOURS, *_MINUTES])
_MINUTES_AFTER_HOURS = _Words([*_MINUTES, "m"])
_SCALE_AFTER_NUMERAL = _Words({"hundred": 100, **_SCALES})
_LATEX_FRACTIONS = _Words(["frac", "dfrac", "tfrac"])
_LATEX_OPERATORS = _Words(["times", "cdot", "div"])
_WORD_OPERATORS = _Words(["x", "times"])
_ALL_WORDS = _Words(
    [
        *_STARTERS, *_SCALES, *_HUNDRED, *_DENOMINATORS, *_AND, *_POINT, *_PERCENT, *_CENT,
        *_MONEY_AFTER, *_DURATION_UNITS, *_MINUTES_AFTER_HOURS, *_LATEX_FRACTIONS,
        *_LATEX_OPERATORS, *_WORD_OPERATORS,
    ]
)  # fmt: skip

_VULGAR = {
    "½": Fraction(1, 2), "⅓": Fraction(1, 3), "⅔": Fraction(2, 3), "¼": Fraction(1, 4),
    "¾": Fraction(3, 4), "⅕": Fraction(1, 5), "⅖": Fraction(2, 5), "⅗": Fraction(3, 5),
    "⅘": Fraction(4, 5), "⅙": Fraction(1, 6), "⅚": Fraction(5, 6), "⅐": Fraction(1, 7),
    "⅛": Fraction(1, 8), "⅜": Fraction(3, 8), "⅝": Fraction(5, 8), "⅞": Fraction(7, 8),
    "⅑": Fraction(1, 9), "⅒": Fraction(1, 10),
}  # fmt: skip
_MINUS = "-−"
_SLASHES = "/⁄"
_CURRENCIES = "$€£"
_OPERATORS = "+-−×*·÷/⁄=^"
# Punctuation that some recognition reads; any other character ends every run.
_MIXED_AFTER = "\\" + "".join(_VULGAR)  # what may follow a whole number in a mixed one
_CHAIN_AFTER = _OPERATORS + "\\"
_ATOM_PUNCT = frozenset(_MINUS + "." + "".join(_VULGAR))  # punctuation that may start an atom
_GRAMMAR_PUNCT = frozenset(".,{}\\%¢" + _MINUS + _SLASHES + _CURRENCIES + _OPERATORS) | set(_VULGAR)
