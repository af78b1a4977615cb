"""Answers as students write them (pedagogy.grading): every form, equivalent forms agreeing,
a choice of values refused with a clear reason, and the simplest-form rule."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pedagogy.grading import AmbiguousAnswer, check_answer, is_plain, is_simplest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("answer", "reference", "problem"),
    [
        ("1 5/12", "17/12", ""),
        ("1 and 5/12", "17/12", ""),
        ("seventy-five", "75", ""),
        ("seventy five", "75", ""),
        ("one hundred and twenty", "120", ""),
        ("three quarters", "0.75", ""),
        ("75%", "0.75", ""),
        ("75 percent", "3/4", ""),
        ("0.75", "75%", ""),
        ("75%", "75", "What percentage of the class passed?"),
        ("$0.75", "0.75", ""),
        ("75 cents", "0.75", ""),
        ("$1,200.50", "1200.5", ""),
        ("3 h 35 min", "215", "How many minutes does the film last?"),
        ("3 hours and 35 minutes", "215", "How many minutes?"),
        ("215 minutes", "215", "How many minutes?"),
        ("12 apples", "12", "Tom picks apples. How many apples?"),
        ("1,250", "1250", ""),
        ("37.40", "37.4", ""),
        ("\\frac{187}{5}", "37.4", ""),
    ],
)
def test_each_form_students_write_is_read(answer: str, reference: str, problem: str) -> None:
    assert check_answer(answer, reference, problem_text=problem).correct, answer
    assert is_plain(answer, problem)  # decided in-process, without the check pool


@pytest.mark.parametrize(
    ("answer", "reference"),
    [("75", "0.75"), ("seventy-four", "75"), ("1 5/12", "15/12"), ("$7.5", "0.75")],
)
def test_other_values_are_wrong(answer: str, reference: str) -> None:
    assert not check_answer(answer, reference).correct


def test_a_unit_the_problem_does_not_use_is_not_stripped() -> None:
    assert not is_plain("12 bananas")


@pytest.mark.parametrize("answer", ["5 or 6", "either 5 or 6", "5, 6", "5; 6", "is it 5 or 6?"])
def test_a_choice_of_values_is_refused_with_a_reason(answer: str) -> None:
    with pytest.raises(AmbiguousAnswer, match="more than one answer"):
        check_answer(answer, "6")


def test_the_simplest_form_rule() -> None:
    assert check_answer("6/8", "3/4").correct
    strict = check_answer("6/8", "3/4", simplest=True)
    assert not strict.correct and "simplest form" in strict.feedback
    assert check_answer("3/4", "3/4", simplest=True).correct
    assert check_answer("0.75", "3/4", simplest=True).correct  # no fraction to reduce
    assert not check_answer("1 6/8", "7/4", simplest=True).correct
    assert check_answer("7/4", "7/4", simplest=True).correct  # an improper fraction is fine
    assert not is_simplest("1 9/4") and is_simplest("1 1/4")


ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]  # fmt: skip
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(n: int) -> str:
    """An independent rendering of 0..999 in words (the test's own, not the parser's)."""
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    if n < 100:
        return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")
    rest = n % 100
    return f"{ONES[n // 100]} hundred" + (f" and {words(rest)}" if rest else "")


def forms_of(value: Fraction) -> list[str]:
    """Ways a student writes ``value``."""
    forms = [
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    ]
    if value.denominator == 1 and 0 <= value < 1000:
        forms.append(words(int(value)))
    if value.denominator == 1 and value >= 1000:
        forms.append(f"{int(value):,}")
    if value.denominator > 1 and value > 1:
        whole, part = divmod(value.numerator, value.denominator)
        forms.append(f"{whole} {part}/{value.denominator}")
        forms.append(f"\\frac{{{value.numerator}}}{{{value.denominator}}}")
    if (value * 100).denominator == 1:
        forms.append(f"{value * 100}%")
        if value.denominator != 1:
            forms.append(f"{float(value)}")
    return forms


@settings(max_examples=200, deadline=None)
@given(
    numerator=st.integers(min_value=0, max_value=50_000),
    denominator=st.sampled_from([1, 1, 2, 3, 4, 5, 8, 10, 12, 100]),
)
def test_equivalent_forms_agree(numerator: int, denominator: int) -> None:
    value = Fraction(numerator, denominator)
    forms = forms_of(value)
    reference = forms[0]
    for form in forms:
        assert check_answer(form, reference).correct, (form, reference)
        assert check_answer(reference, form).correct, (reference, form)
    assert not check_answer(forms[0], str(value + 1)).correct
