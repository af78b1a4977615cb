import pytest

from pedagogy.grading import check_answer

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "submitted",
    ["37.4", "37.40", "187/5", "\\frac{187}{5}", "$\\frac{187}{5}$", " 37.4 ", "x = 37.4"],
)
def test_equivalent_forms_are_accepted(submitted):
    assert check_answer(submitted, "37.4").correct


@pytest.mark.parametrize("submitted", ["37", "37.5", "-37.4", "", "banana", "374"])
def test_wrong_answers_are_rejected(submitted):
    assert not check_answer(submitted, "37.4").correct


@pytest.mark.parametrize(
    ("submitted", "reference"),
    [("$12.50", "12.5"), ("1,225", "1225"), ("35%", "35"), ("5/36", "5/36"), ("2/3", "2/3")],
)
def test_what_students_type_around_numbers(submitted, reference):
    assert check_answer(submitted, reference).correct


def test_runs_off_the_main_thread():
    # The consumer calls it from a worker thread; SIGALRM timeouts would fail there.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(check_answer, "187/5", "37.4").result().correct
