import pytest

from pedagogy.judges import reveals_answer, stated_values

pytestmark = pytest.mark.unit

PROBLEM = "Maya has $20. She buys a book for $7.45 and a pen for $1.80. How much is left?"


def test_stated_values():
    assert stated_values("x = 3/4, then \\frac{1}{2} and 1,225.5 or -7") == [
        "3/4",
        "\\frac{1}{2}",
        "1,225.5",
        "-7",
    ]


@pytest.mark.parametrize(
    "tutor",
    [
        "So she has $10.75 left.",
        "The answer is 10.75, well done",
        "That gives \\frac{43}{4} dollars.",
        "You should get 43/4.",
    ],
)
def test_leaks_in_any_equivalent_form(tutor):
    assert reveals_answer(tutor, "10.75", PROBLEM)


@pytest.mark.parametrize(
    "tutor",
    [
        "What do the book and the pen cost together?",
        "Start from the $20 she had and take away 7.45 first.",
        "Close! Check your subtraction: is it 10.85?",
    ],
)
def test_guidance_without_the_answer_is_not_a_leak(tutor):
    assert not reveals_answer(tutor, "10.75", PROBLEM)


def test_confirming_after_the_student_said_it_is_not_a_leak():
    assert not reveals_answer("Yes, 10.75 is right!", "10.75", PROBLEM, ["I got 10.75"])
    assert reveals_answer("It is 10.75.", "10.75", PROBLEM, ["is it 11?"])


def test_numbers_from_the_problem_are_not_leaks():
    assert not reveals_answer("She starts with 20 dollars.", "20", "Maya has 20 dollars.")
