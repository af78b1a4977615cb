"""Tests of pedagogy.numbers: every form a number can take, streaming, round trips, bounds."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from num2words import num2words

from pedagogy.numbers import (
    MAX_DIGITS,
    MAX_TEXT_CHARS,
    Mention,
    TextTooLong,
    answer_value,
    mentions,
    settled_until,
)

pytestmark = pytest.mark.unit

F = Fraction


def found(text: str) -> set[tuple[str, str, tuple[Fraction, ...]]]:
    """(kind, the mention's text, values) for every mention."""
    return {(m.kind, text[m.start : m.end], m.values) for m in mentions(text)}


def has(text: str, kind: str, span: str, *values) -> bool:
    return (kind, span, tuple(F(v) for v in values)) in found(text)


# ---- every form, by example ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "span", "value", "digits"),
    [
        ("It costs 1,250 now", "1,250", 1250, "1250"),
        ("about 37.4 units", "37.4", F(187, 5), "374"),
        ("just .5 of it", ".5", F(1, 2), "5"),
        ("x is -3 here", "-3", -3, "3"),
        ("(−3)", "−3", -3, "3"),
        ("1,234,567.89", "1,234,567.89", F(123456789, 100), "123456789"),
        ("0", "0", 0, "0"),
        ("٣٤", "٣٤", 34, "34"),
    ],
)
def test_numerals(text, span, value, digits):
    [mention] = [m for m in mentions(text) if m.kind == "numeral"]
    assert text[mention.start : mention.end] == span
    assert mention.values == (F(value),)
    assert mention.digits == digits


def test_a_minus_between_numbers_is_not_a_sign():
    assert has("10-3", "numeral", "3", 3)
    assert not has("10-3", "numeral", "-3", -3)
    assert has("x-3", "numeral", "3", 3)


def test_separators_that_are_not_thousands_groups():
    assert has("1,2345", "numeral", "1", 1)
    assert has("1,2345", "numeral", "2345", 2345)
    assert not any(m.values == (F(12345),) for m in mentions("1,2345"))


@pytest.mark.parametrize(
    ("text", "kind", "span", "value"),
    [
        ("so 3/4 of it", "fraction", "3/4", F(3, 4)),
        ("so 3 / 4 of it", "fraction", "3 / 4", F(3, 4)),
        ("-3/4", "fraction", "-3/4", F(-3, 4)),
        ("$\\frac{3}{4}$", "latex_fraction", "\\frac{3}{4}", F(3, 4)),
        ("\\dfrac{187}{5}", "latex_fraction", "\\dfrac{187}{5}", F(187, 5)),
        ("\\tfrac{1}{2}", "latex_fraction", "\\tfrac{1}{2}", F(1, 2)),
        ("\\frac34", "latex_fraction", "\\frac34", F(3, 4)),
        ("\\frac{ 3 }{ 4 }", "latex_fraction", "\\frac{ 3 }{ 4 }", F(3, 4)),
        ("= -\\frac{1}{2}", "latex_fraction", "-\\frac{1}{2}", F(-1, 2)),
        ("1 5/12", "mixed", "1 5/12", F(17, 12)),
        ("1\\frac{5}{12}", "mixed", "1\\frac{5}{12}", F(17, 12)),
        ("1 \\frac{5}{12}", "mixed", "1 \\frac{5}{12}", F(17, 12)),
        ("2 and 3/4", "mixed", "2 and 3/4", F(11, 4)),
        ("-2 3/4", "mixed", "-2 3/4", F(-11, 4)),
        ("1½ cups", "mixed", "1½", F(3, 2)),
        ("¾ of it", "fraction", "¾", F(3, 4)),
    ],
)
def test_fractions_and_mixed_numbers(text, kind, span, value):
    assert has(text, kind, span, value)


def test_a_mixed_number_also_holds_its_fraction_and_numerals():
    kinds = found("1 5/12")
    assert ("fraction", "5/12", (F(5, 12),)) in kinds
    assert {("numeral", "1", (F(1),)), ("numeral", "12", (F(12),))} <= kinds


def test_no_mixed_number_from_an_improper_fraction_or_zero_denominator():
    assert not any(m.kind == "mixed" for m in mentions("3 7/2"))
    assert not any(m.kind == "fraction" for m in mentions("3/0"))
    assert not any(m.kind == "latex_fraction" for m in mentions("\\frac{3}{0}"))


@pytest.mark.parametrize("text", ["75%", "75 %", "75 percent", "75 per cent", "75\\%"])
def test_percentages(text):
    assert has(text, "percent", text, 75, F(3, 4))
    assert has(text, "numeral", "75", 75)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("seventy-five", 75),
        ("seventy five", 75),
        ("Seventy-Five", 75),
        ("one hundred and twenty", 120),
        ("one hundred twenty", 120),
        ("two thousand three hundred", 2300),
        ("one thousand, two hundred and thirty-four", 1234),
        ("a hundred", 100),
        ("a thousand and five", 1005),
        ("twelve hundred", 1200),
        ("three million four hundred thousand and one", 3_400_001),
        ("three point five", F(7, 2)),
        ("three point one four", F(314, 100)),
        ("zero", 0),
        ("three quarters", F(3, 4)),
        ("three-quarters", F(3, 4)),
        ("a half", F(1, 2)),
        ("one half", F(1, 2)),
        ("half", F(1, 2)),
        ("two thirds", F(2, 3)),
        ("five twelfths", F(5, 12)),
        ("an eighth", F(1, 8)),
        ("one and a half", F(3, 2)),
        ("two and three quarters", F(11, 4)),
        ("negative seven", -7),
    ],
)
def test_number_words(text, value):
    assert has(f"it is {text} here", "words", text, value)


def test_number_words_end_where_the_grammar_does():
    assert found("twenty twenty") == {
        ("words", "twenty", (F(20),)),
    }
    assert has("one hundred and apples", "words", "one hundred", 100)
    assert has("a thousand, two thousand", "words", "a thousand", 1000)
    assert has("a thousand, two thousand", "words", "two thousand", 2000)
    assert not mentions("a cat and another")
    assert not mentions("hundreds of them")


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("seven five", "75"),
        ("7, 5", "75"),
        ("7,5", "75"),
        ("7-5", "75"),
        ("7 5", "75"),
        ("seven-five", "75"),
        ("1 2 3 4", "1234"),
        ("zero seven", "07"),
    ],
)
def test_digit_sequences(text, digits):
    [sequence] = [m for m in mentions(text) if m.kind == "digit_sequence"]
    assert (sequence.start, sequence.end) == (0, len(text))
    assert sequence.digits == digits
    assert sequence.values[0] == int(digits)


def test_a_decimal_comma_is_a_second_reading():
    [sequence] = [m for m in mentions("7,5") if m.kind == "digit_sequence"]
    assert sequence.values == (F(75), F(15, 2))


def test_no_digit_sequence_inside_fractions_or_decimals():
    for text in ("1 5/12", "3.5 7", "1/2 3"):
        assert not any(m.kind == "digit_sequence" for m in mentions(text)), text


@pytest.mark.parametrize(
    ("text", "span", "values"),
    [
        ("$0.75", "$0.75", (F(3, 4),)),
        ("$1,200.50", "$1,200.50", (F(2401, 2),)),
        ("\\$5", "\\$5", (F(5),)),
        ("€ 3", "€ 3", (F(3),)),
        ("75 cents", "75 cents", (F(3, 4), F(75))),
        ("75¢", "75¢", (F(3, 4), F(75))),
        ("seventy-five cents", "seventy-five cents", (F(3, 4), F(75))),
        ("12 dollars", "12 dollars", (F(12),)),
    ],
)
def test_money(text, span, values):
    assert has(text, "money", span, *values)


def test_money_keeps_the_literal_number_as_a_mention():
    assert has("$0.75", "numeral", "0.75", F(3, 4))
    assert has("75 cents", "numeral", "75", 75)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("3 h 35 min", (215, F(215, 60))),
        ("3h35m", (215, F(215, 60))),
        ("3 hours and 35 minutes", (215, F(215, 60))),
        ("3 hours, 35 minutes", (215, F(215, 60))),
        ("three hours and thirty-five minutes", (215, F(215, 60))),
        ("2.5 hours", (F(5, 2), 150)),
        ("35 min", (35, F(35, 60))),
    ],
)
def test_durations(text, values):
    assert has(text, "duration", text, *values)


def test_durations_keep_their_numbers():
    assert has("3 h 35 min", "numeral", "3", 3)
    assert has("3 h 35 min", "numeral", "35", 35)


def test_numeral_with_a_scale_word():
    assert has("5 million people", "scaled", "5 million", 5_000_000)
    assert has("2.5 thousand", "scaled", "2.5 thousand", 2500)


def test_mentions_are_in_order_and_frozen():
    result = mentions("a 3/4 b 7 c seventy")
    assert [m.start for m in result] == sorted(m.start for m in result)
    assert all(isinstance(m, Mention) for m in result)
    with pytest.raises(AttributeError):
        result[0].start = 5  # type: ignore[misc]


def test_ordinary_text_has_no_mentions():
    assert mentions("The cat sat on the mat, didn't it?") == []
    assert mentions("") == []


# ---- answer_value --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("37.4", F(187, 5)),
        (" 1,250 ", 1250),
        ("-3", -3),
        ("1 5/12", F(17, 12)),
        ("3/4", F(3, 4)),
        ("\\frac{187}{5}", F(187, 5)),
        ("$\\frac{187}{5}$", F(187, 5)),
        ("\\boxed{42}", 42),
        ("seventy-five", 75),
        ("three quarters", F(3, 4)),
        ("one and a half", F(3, 2)),
        ("$0.75", F(3, 4)),
        ("75%", 75),
        ("75 percent", 75),
        ("2.5 hours", F(5, 2)),
        ("42.", 42),
        ("5 million", 5_000_000),
    ],
)
def test_answer_value(answer, value):
    assert answer_value(answer) == value


@pytest.mark.parametrize(
    "answer", ["5 or 6", "7 × 14", "x + 1", "banana", "", "7 5", "3/0", "1" * (MAX_DIGITS + 1)]
)
def test_answer_value_is_none_for_what_is_not_one_number(answer):
    assert answer_value(answer) is None


# ---- streaming ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("The answer is 5 apples", ""),
        ("The answer is 5", "5"),
        ("The answer is 5 ", "5 "),
        ("The answer is 5.", "5."),
        ("The answer is 1,", "1,"),
        ("The answer is 3/", "3/"),
        ("The answer is seve", "seve"),
        ("The answer is seventy", "seventy"),
        ("The answer is one and", "one and"),
        ("The answer is three point", "three point"),
        ("The answer is $", "$"),
        ("The answer is \\frac{3", "\\frac{3"),
        ("The answer is 3 hours and", "3 hours and"),
        ("The answer is 75 per", "75 per"),
        ("So 7 × 14 =", "7 × 14 ="),
        ("So 7 × 14 = 98 and more", ""),
        ("The answer is a", "a"),
        ("It is 5 apples. Next", ""),
        ("Well!", ""),
        ("", ""),
    ],
)
def test_what_is_held_back(text, held):
    assert text[settled_until(text) :] == held


def _mentions_before(text: str, index: int) -> list[Mention]:
    return [m for m in mentions(text) if m.start < index]


NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve fifteen twenty "
    "seventy ninety hundred thousand million and a an point half halves third thirds quarter "
    "quarters twelfths negative percent per cent cents dollars hour hours h min minutes m frac "
    "dfrac times x"
).split()
FRAGMENTS = st.one_of(
    st.sampled_from(NUMBER_WORDS),
    st.sampled_from(NUMBER_WORDS).map(lambda w: w[: max(1, len(w) // 2)]),
    st.sampled_from(["the", "apples", "is", "so", "answer", "Seventy", "ONE", "sev"]),
    st.integers(0, 10**6).map(str),
    st.integers(0, 10**6).map("{:,}".format),
    st.sampled_from([*" ,./-−$€¢%\\{}+×*=½¾\n\t!?()", "  ", "\\frac", "\\frac{", "\\%"]),
    st.text(max_size=3),
)
TEXTS = st.lists(FRAGMENTS, max_size=14).map("".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, TEXTS)
@example("The answer is 3", "4")
@example("1,25", "0")
@example("seven", "ty five")
@example("3 h", " 35 min")
@example("one and a", " half")
@example("\\frac{3}{", "4}")
@example("7 ", "5")
def test_appending_never_changes_what_is_settled(text, more):
    index = settled_until(text)
    assert 0 <= index <= len(text)
    assert _mentions_before(text + more, index) == _mentions_before(text, index)
    assert settled_until(text + more) >= index


@settings(max_examples=300, deadline=None)
@given(TEXTS, st.integers(0, 200))
def test_reading_from_an_index_equals_reading_all(text, start):
    start = min(start, len(text))
    assert mentions(text, start) == [m for m in mentions(text) if m.start >= start]


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_streaming_character_by_character_releases_the_same_mentions(text):
    """What a guard releases piece by piece is exactly what the whole text states there."""
    released = 0
    for end in range(len(text) + 1):
        index = settled_until(text[:end])
        assert index >= released
        assert _mentions_before(text, index) == _mentions_before(text[:end], index)
        released = index


# ---- round trips ---------------------------------------------------------------------------------


def _values_at(text: str, span: str) -> set[Fraction]:
    start = text.index(span)
    return {
        value
        for m in mentions(text)
        if m.start == start and m.end == start + len(span)
        for value in m.values
    }


@given(st.integers(-(10**12), 10**12))
def test_integers_round_trip_as_digits(n):
    for written in (str(n), f"{n:,}"):
        assert F(n) in _values_at(f"so {written} left", written)
        assert answer_value(written) == n


@given(st.integers(0, 10**12 - 1))
def test_integers_round_trip_as_words(n):
    words = num2words(n)
    assert _values_at(f"so {words} left", words) == {F(n)}
    assert answer_value(words) == n


@given(st.integers(0, 10**6), st.integers(1, 9))
def test_decimals_round_trip_as_words(whole, tenths):
    words = num2words(float(f"{whole}.{tenths}"))
    assert " point " in words
    assert answer_value(words) == F(whole) + F(tenths, 10)


@given(st.integers(-(10**6), 10**6), st.integers(1, 10**6))
def test_fractions_round_trip(top, bottom):
    value = F(top, bottom)
    assert answer_value(f"{top}/{bottom}") == value
    assert answer_value(f"\\frac{{{top}}}{{{bottom}}}") == value
    assert answer_value(f"\\dfrac{{{top}}}{{{bottom}}}") == value
    if 0 < top < bottom:
        assert answer_value(f"3 {top}/{bottom}") == 3 + value
        assert answer_value(f"3\\frac{{{top}}}{{{bottom}}}") == 3 + value


@given(st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False))
def test_money_and_percent_round_trip(amount):
    value = F(amount)
    assert F(value) in _values_at(f"pay ${amount:,} now", f"${amount:,}")
    assert answer_value(f"{amount}%") == value
    assert F(value) / 100 in _values_at(f"it is {amount} percent", f"{amount} percent")


# ---- bounds -------------------------------------------------------------------------------------


def test_long_digit_runs_are_not_values():
    long_run = "9" * (MAX_DIGITS + 1)
    assert mentions(f"it is {long_run} now") == []
    assert mentions("1," + ",".join(["000"] * 14)) == []
    assert mentions("9" * MAX_DIGITS)[0].values == (F(int("9" * MAX_DIGITS)),)


def test_text_over_the_limit_is_refused():
    text = "a" * (MAX_TEXT_CHARS + 1)
    for read in (mentions, settled_until, answer_value):
        with pytest.raises(TextTooLong):
            read(text)
    assert issubclass(TextTooLong, ValueError)


ADVERSARIAL = [
    "1," * 10_000,
    "seventy " * 2_500,
    "\\frac{" * 3_000,
    "1 " * 10_000,
    "7-" * 10_000,
    "1+" * 10_000,
    "one and " * 2_500,
    "$" * 20_000,
    "1.1." * 5_000,
    "a " * 10_000,
    "one hundred and " * 1_250,
    "-" * 20_000,
    "3 h " * 5_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=lambda t: repr(t[:12]))
@pytest.mark.parametrize("read", [mentions, settled_until, answer_value])
def test_adversarial_texts_take_linear_time(text, read):
    """A safety net against quadratic or exponential reading, not a benchmark: the thread's
    CPU time (not wall time, which a busy machine stretches) stays far below what a quadratic
    read of 20,000 characters would take."""
    text = text[:MAX_TEXT_CHARS]
    began = time.thread_time()
    read(text)
    assert time.thread_time() - began < 2.0
