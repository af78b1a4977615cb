"""A small, rule-based moderation step for student messages (plain Python, no Django).

``moderate(text)`` looks for self-harm, violence and abuse (bullying, harassment, sexual content
involving minors) with a curated lexicon of phrases, and returns the most severe match::

    >>> moderate("I want to kill myself")
    ModerationResult(category='self_harm', severity='high', matched='kill myself')
    >>> moderate("kill the x term").flagged
    False

How a text is read:
- lower-cased and Unicode-normalised (NFKC, so full-width letters and ligatures count);
- leetspeak undone inside words that have at least two letters ("k1ll", "su1c1de", "d!e"), but
  not in math ("3x + 7 = 25" stays as it is);
- runs of a repeated letter collapsed to one ("kiiiilll myyyself"); the lexicon is collapsed the
  same way, so it is written in ordinary spelling;
- words are matched whole (word boundaries) and may be separated by any spaces or punctuation
  ("kill.my.self").

The lexicon names whom an act is aimed at ("kill myself", "shoot you", "bring a gun to
school"), so math and physics usage is not flagged: "kill the x term", "cut the cake into 8
pieces", "a gun fires a bullet at 300 m/s", "the population dies off", "this problem is killing
me" (hyperbole, not flagged; "just kill me" is only low).

Limits (read before relying on it):
- It is a lexicon, not a classifier: it misses paraphrase ("I won't be around next week, it's
  better that way"), sarcasm, other languages, misspellings beyond the normalisation above, and
  words split by letters ("k i l l"). It does not understand negation: "I would never kill
  myself" is flagged (on purpose: a person should look).
- It flags a student *reporting* harm ("they keep bullying me", "he touched me") as well as
  threats; both need a teacher.
- Severity is a fixed property of the matched phrase, not of context or history.
- A match is a reason for a teacher to read the dialogue, never a verdict. Pair it with a
  trained classifier where one is available; this step is cheap enough to run on every message.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

SEVERITY_RANK = {None: 0, "low": 1, "medium": 2, "high": 3}

SELF_HARM = "self-harm"
VIOLENCE = "violence"
# Bullying, harassment and sexual content involving minors.
ABUSE = "abuse"
SEXUAL_MINORS = ABUSE


@dataclass(frozen=True)
class ModerationResult:
    category: str | None
    severity: str | None
    matched: str

    @property
    def flagged(self) -> bool:
        return self.category is not None


CLEAN = ModerationResult(category=None, severity=None, matched="")

# Building blocks (ordinary spelling; collapsed with the text).
_SELF = r"(?:my ?self)"
_WANT = r"(?:want|wanna|wana|need|plan(?:ning)?|trying|wish(?: i could)?)"
_PEOPLE = (
    r"(?:you|u|him|her|them all|everyone|everybody|someone|somebody|people|kids|my (?:teacher|mom|"
    r"mum|dad|brother|sister|friend|classmates?)|the (?:teacher|class|kids))"
)
_SCHOOL = r"(?:school|class|classroom|campus)"

# (category, severity, pattern). Ordered by nothing in particular: the most severe match wins.
LEXICON: list[tuple[str, str, str]] = [
    # ---- self-harm ----------------------------------------------------------------------------
    (SELF_HARM, "high", rf"(?:kill|hurt|harm|cut|hang|shoot|stab|burn|starve) {_SELF}"),
    (SELF_HARM, "high", rf"(?:killing|hurting|harming|cutting|starving) {_SELF}"),
    (SELF_HARM, "high", r"su[i]?cid(?:e|al)|self ?harm(?:ing)?|self ?injur(?:y|e|ing)"),
    (SELF_HARM, "high", r"kms"),
    (SELF_HARM, "high", rf"{_WANT} (?:to )?die|i wish i (?:was|were) dead|better off dead"),
    (SELF_HARM, "high", r"end (?:my|it) (?:life|all)|end it all|take my (?:own )?life"),
    (SELF_HARM, "high", r"(?:don'?t|do not|dont) want to (?:live|be alive|exist) ?(?:anymore)?"),
    (SELF_HARM, "high", r"no (?:reason|point) (?:to|in) (?:live|living|being alive)"),
    (SELF_HARM, "high", r"overdose|od on (?:pills|my meds)|swallow (?:all )?(?:the )?pills"),
    (
        SELF_HARM,
        "medium",
        r"i hate (?:my ?self|my life)|i(?:'m| am) worthless|nobody would miss me",
    ),
    (SELF_HARM, "medium", r"i want to disappear|i can'?t go on|i give up on (?:life|everything)"),
    (SELF_HARM, "low", r"(?:just|please|somebody|someone) kill me|shoot me now"),
    (SELF_HARM, "low", r"(?:i'?m|i am) (?:going|gonna) (?:to )?die"),
    # ---- violence -----------------------------------------------------------------------------
    (VIOLENCE, "high", rf"(?:kill|murder|shoot|stab|strangle|choke) {_PEOPLE}"),
    (VIOLENCE, "high", rf"(?:shoot|bomb|blow) up (?:the |my |this )?{_SCHOOL}"),
    (
        VIOLENCE,
        "high",
        rf"(?:bring|brought|bringing) (?:a |my |the )?(?:gun|knife|weapon|bomb)s? to {_SCHOOL}",
    ),
    (VIOLENCE, "high", rf"school shooting|(?:gun|knife|bomb) (?:in|at) {_SCHOOL}"),
    (VIOLENCE, "medium", rf"(?:punch|kick|slap|hurt) {_PEOPLE}|beat {_PEOPLE} up"),
    (VIOLENCE, "medium", r"(?:i'?ll|gonna|going to) fight (?:you|him|her)"),
    (VIOLENCE, "medium", r"(?:he|she|they|my \w+) (?:hits|hit|beats|beat|hurts|hurt) me"),
    # ---- abuse: bullying and harassment -------------------------------------------------------
    (ABUSE, "high", r"kys|kill your ?self|go (?:and )?die|(?:you|u) should die"),
    (ABUSE, "medium", r"(?:bully|bullies|bullying|bullied|harass|harassing|harassed) me"),
    (ABUSE, "medium", r"(?:i'?m|i am|being|getting|get) (?:bullied|harassed|picked on)"),
    (ABUSE, "medium", r"nobody likes (?:you|u)|everyone hates (?:you|u)"),
    (
        ABUSE,
        "low",
        r"(?:you|u)(?:'re| are| r)? (?:so |such an? |a |an )?"
        r"(?:stupid|idiot|dumb|moron|loser|retard(?:ed)?|worthless|useless|ugly|fat)",
    ),
    (ABUSE, "low", r"(?:fuck|screw) (?:you|u|off)|stfu|shut up"),
    # ---- sexual content involving minors (students are minors: always high) -------------------
    (
        SEXUAL_MINORS,
        "high",
        r"(?:send|show|share|post) (?:me )?(?:your |ur )?"
        r"(?:nudes?|naked (?:pics?|photos?|pictures?))",
    ),
    (SEXUAL_MINORS, "high", r"nudes|naked (?:pics?|photos?|pictures?|selfies?)"),
    (
        SEXUAL_MINORS,
        "high",
        r"(?:touch|touched|touches|touching) (?:me|my) (?:private|privates|down there|there)"
        r"|touched me inappropriately",
    ),
    (
        SEXUAL_MINORS,
        "high",
        r"molest(?:ed|ing|s)?|rape|raped|rapist|sexual(?:ly)? abus(?:e|ed)|groom(?:ed|ing) me",
    ),
    (
        SEXUAL_MINORS,
        "high",
        r"(?:have|having|had) sex|sex(?:ting)? with|porn(?:o|ography)?|child porn",
    ),
]

_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
    }
)
_LEET_CHARS = set("013457@$!|")
_TOKEN = re.compile(r"\S+")
# Apostrophes of every kind count as one.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


def _collapse_repeats(text: str) -> tuple[str, list[int]]:
    """``text`` with runs of one letter collapsed, and where each kept character came from."""
    kept: list[int] = []
    for index, char in enumerate(text):
        if kept and char.isalpha() and char == text[kept[-1]] and kept[-1] == index - 1:
            kept[-1] = index  # still the same run: point at its end
            continue
        kept.append(index)
    return "".join(text[i] for i in kept), kept


def _unleet_token(match: re.Match) -> str:
    token = match.group(0)
    letters = sum(ch.isalpha() for ch in token)
    if letters >= 2 and any(ch in _LEET_CHARS for ch in token):
        core = token.rstrip("!.?,;:")
        return core.translate(_LEET) + token[len(core) :]
    return token


def _prepare(text: str) -> tuple[str, str, list[int]]:
    base = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    unleeted = _TOKEN.sub(_unleet_token, base)  # one character for one: positions hold
    collapsed, origin = _collapse_repeats(unleeted)
    return base, collapsed, origin


def normalise(text: str) -> str:
    """The text as the lexicon sees it (see the module docstring)."""
    return _prepare(text)[1]


def _compile(pattern: str) -> re.Pattern:
    # Collapse repeated letters in the literal parts (not after a backslash: \b, \s, \w), and
    # let a single space stand for any run of spaces or punctuation between words.
    source = re.sub(r"(?<!\\)([a-z])\1+", r"\1", pattern)
    source = source.replace(" ?", r"[\s\W_]*").replace(" ", r"[\s\W_]+")
    return re.compile(rf"(?<![a-z0-9])(?:{source})(?![a-z0-9])")


_COMPILED = [(category, severity, _compile(pattern)) for category, severity, pattern in LEXICON]


# Longest text read (a student message is capped far below this by the socket); the rest is
# not read, so moderation costs time linear in a bounded length.
MAX_MODERATED_CHARS = 20_000


def moderate(text: str) -> ModerationResult:
    """The most severe lexicon match in ``text`` (``CLEAN`` when there is none); only its first
    :data:`MAX_MODERATED_CHARS` characters are read."""
    if not text:
        return CLEAN
    base, normalised, origin = _prepare(text[:MAX_MODERATED_CHARS])
    best = CLEAN
    for category, severity, pattern in _COMPILED:
        if SEVERITY_RANK[severity] <= SEVERITY_RANK[best.severity]:
            continue
        match = pattern.search(normalised)
        if match:
            start = origin[match.start()]
            # The first character of the run the match ends in, back to its last repeat.
            end = origin[match.end() - 1] + 1
            matched = base[start:end]
            best = ModerationResult(category=category, severity=severity, matched=matched)
            if severity == "high":
                break
    return best
