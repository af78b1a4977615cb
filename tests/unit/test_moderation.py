"""The lexicon moderation step for student messages (pedagogy/moderation.py)."""

import pytest

from pedagogy.moderation import CLEAN, moderate, normalise

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "category", "severity"),
    [
        # self-harm
        ("I want to kill myself", "self-harm", "high"),
        ("i think about suicide a lot", "self-harm", "high"),
        ("sometimes I cut myself", "self-harm", "high"),
        ("I just want to die", "self-harm", "high"),
        ("I don't want to live anymore", "self-harm", "high"),
        ("I'm going to end my life", "self-harm", "high"),
        ("kms", "self-harm", "high"),
        ("I hate myself", "self-harm", "medium"),
        ("just kill me now", "self-harm", "low"),
        # violence
        ("I'm going to shoot up the school tomorrow", "violence", "high"),
        ("I will bring a gun to school", "violence", "high"),
        ("I'm going to kill my teacher", "violence", "high"),
        ("I'll stab him", "violence", "high"),
        ("I'm gonna punch you", "violence", "medium"),
        ("my dad hits me", "violence", "medium"),
        # abuse: bullying, harassment, sexual content involving minors
        ("kys", "abuse", "high"),
        ("go die", "abuse", "high"),
        ("they keep bullying me at lunch", "abuse", "medium"),
        ("I'm being bullied", "abuse", "medium"),
        ("nobody likes you", "abuse", "medium"),
        ("you are so stupid", "abuse", "low"),
        ("send me nudes", "abuse", "high"),
        ("he touched me down there", "abuse", "high"),
        ("my coach is grooming me", "abuse", "high"),
    ],
)
def test_unsafe_messages_are_flagged_with_category_and_severity(text, category, severity):
    result = moderate(text)
    assert (result.category, result.severity) == (category, severity), result
    assert result.flagged
    assert result.matched and result.matched.lower() in text.lower()


@pytest.mark.parametrize(
    "text",
    [
        "I want to kill myself",
        "I WANT TO KILL MYSELF",
        "i want to k1ll mys3lf",
        "kiiiilll myyyyself",
        "kill.my.self",
        "I want to kill   my self",
        "i w4nna d!e",
        "ｋｉｌｌ ｍｙｓｅｌｆ",  # full-width letters
        "su1c1de",
    ],
)
def test_spelling_tricks_are_normalised(text):
    result = moderate(text)
    assert (result.category, result.severity) == ("self-harm", "high"), (text, result)


@pytest.mark.parametrize(
    "text",
    [
        "kill the x term",
        "Can I kill them? the 3x terms cancel",
        "this problem is killing me",
        "Subtract 7 to kill the constant on the left",
        "cut the cake into 8 equal pieces",
        "a gun fires a bullet at 300 m/s, how far does it go?",
        "the population dies off exponentially",
        "the ball is shot at an angle of 30 degrees",
        "execute the plan: attack the problem from the end",
        "the hangman game has 6 wrong guesses",
        "Solve for $x$: $3x + 7 = 25$",
        "x = 5, 3x - 1 = 14, so 2^3 = 8",
        "sin3x + log10(x)",
        "a sextic polynomial has degree 6",
        "I love rapping and math",
        "Therapist said fractions are fine",
        "the die shows a 6 with probability 1/6",
        "I beat my high score",
        "",
    ],
)
def test_math_and_everyday_usage_is_not_flagged(text):
    assert moderate(text) == CLEAN, moderate(text)


def test_the_most_severe_match_wins():
    result = moderate("you are stupid and I want to kill myself")
    assert (result.category, result.severity) == ("self-harm", "high")


def test_matched_text_is_quoted_from_the_original():
    assert moderate("well... I WANT TO KIIILL MYSELF!").matched == "kiiill myself"


def test_normalise_collapses_repeats_and_undoes_leetspeak_in_words_only():
    assert normalise("Heeeellooo w0rld 3x + 7") == "helo world 3x + 7"
