"""Every way a text can state a number, for the tutor's answer guard.

The guard reads a tutor reply as it streams and must recognise the problem's final answer in
any form a student would read as that answer: "37.4", "1,250", "3/4", ``\\frac{3}{4}``,
"1 5/12", "75%", "seventy-five", "three quarters", "seven five", "$0.75", "3 h 35 min".
:func:`mentions` lists every number a reader sees, with every value a reader could take it for;
:func:`settled_until` says how much of a growing text can be released because no further text
can change what it states; :func:`answer_value` reads a final answer written in any of the forms.

How it reads. The text is cut into tokens (digit runs, letter runs, whitespace runs, single other
characters); appending text can only lengthen the last token or add new ones. Numbers are then
read in two passes over the tokens, each left to right:

* atoms, which never overlap: numerals (sign, thousands separators, decimals), number words
  ("one hundred and twenty", "three point five", "two thirds", "one and a half") and vulgar
  fraction characters;
* compounds built on atoms, which may overlap them and each other: slash and LaTeX fractions,
  mixed numbers, percentages, money, durations, a numeral with a scale word ("5 million"),
  digits spelled one by one ("7, 5", "seven five"); plus arithmetic chains ("7 x 14 = 98"),
  which state no mention of their own but are held back whole (see below).

Every recognition attempt reads tokens through a few queries, and notes when an answer could
change if text were appended: a query about the last token (a digit or whitespace run that may
grow, or a word that is, or may still become, one the grammar knows: "seve" may become
"seventy") or about a token past the end. :func:`settled_until` is the start of the earliest
such attempt. So what is held back is the trailing run that can still grow into or change a
mention: trailing digits, number words or their prefixes, separators after a number (",", ".",
"/", "-", spaces), an open ``\\frac{``, "$", "and", "point", unit words, and an arithmetic
chain from its first number while an operator or "=" may still be followed by one. An ordinary
word (one the grammar does not know, and no prefix of one) ends every run, so "5 apples" is
settled whole.

Bounds: texts longer than :data:`MAX_TEXT_CHARS` are refused before reading; numerals with more
than :data:`MAX_DIGITS` digits are not read as values; every token is visited a bounded number
of times (maximal munch, and chains and digit sequences are never restarted inside themselves),
and the only regular expression is a tokenizer without backtracking, so time is linear in the
length of the text. Scanning restarts after the last "hard" token (an ordinary word, punctuation
the grammar does not use, a long blank), which no mention spans and no recognition reads past,
so :func:`settled_until` and ``mentions(text, start)`` cost time in the tail only.

Where each part lives: :mod:`.limits` holds the bounds and :class:`TextTooLong`; :mod:`.mention`
:class:`Mention`; :mod:`.vocabulary` the words and characters the grammar knows; :mod:`.tokens`
the tokenizer, hard tokens and restart points, and the token queries every recognition reads
through; :mod:`.atoms` the first pass (numerals, number words); :mod:`.scan` the second pass
(compounds and chains) and :class:`~.scan._Scan`, the whole reading; :mod:`.reading` the public
functions.
"""

from .limits import MAX_DIGITS, MAX_TEXT_CHARS, TextTooLong
from .mention import Mention
from .reading import answer_reading, answer_value, mentions, settled_until

__all__ = [
    "MAX_DIGITS",
    "MAX_TEXT_CHARS",
    "Mention",
    "TextTooLong",
    "answer_reading",
    "answer_value",
    "mentions",
    "settled_until",
]
