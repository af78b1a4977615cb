"""Answer checking and the leak judge are bounded: whatever a student or a model writes gets a
verdict or ``Uncheckable`` at the time limit, never a hang or another exception."""

import asyncio
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pedagogy import bounded
from pedagogy.grading import (
    Uncheckable,
    acheck_answer,
    check_answer,
    check_answer_now,
    check_plain,
    is_correct,
)
from pedagogy.judges import leaked_value, reveals_answer

pytestmark = pytest.mark.unit

# A hang guard, not a speed goal: the limit is 0.8 s; a check that never stops would fail here.
HANG = 5.0

# Costly, yet past the limits checked before parsing: only the pool's time limit stops them.
COSTLY = [
    "(10^10)^(10^10)",
    "(2)^(10^10)",
    "$\\frac{(9^9)^{(9^9)}}{2}$",
]


@pytest.fixture(scope="module", autouse=True)
def pool():
    bounded.start()
    yield


@pytest.mark.parametrize("answer", COSTLY)
def test_a_costly_answer_is_uncheckable_at_the_limit(answer):
    started = time.monotonic()
    with pytest.raises(Uncheckable):
        check_answer(answer, "37.4")
    assert time.monotonic() - started < HANG
    # The pool recovered: the next student gets a verdict.
    assert check_answer("187/5", "37.4").correct


@pytest.mark.parametrize(
    "answer",
    [
        "2^2^2^2^2",
        "1" * 400,
        "5!!!",
        "x" * 301,
        "2**2**2**2**2",
        "9^9^9",
        "9^{9^{9}}",
        "10**10**10",
        "$\\frac{9^{9^9}}{2}$",
        "99999999999999999^99999999999999999",
        "2^40000",
    ],
)
def test_what_no_school_answer_needs_is_refused_before_parsing(answer):
    started = time.monotonic()
    with pytest.raises(Uncheckable) as refused:
        check_answer(answer, "37.4")
    assert time.monotonic() - started < 0.1  # refused, not timed out
    assert not refused.value.costly  # no worker was spent on it


@pytest.mark.parametrize(
    ("answer", "reference", "correct"),
    [
        ("2^10", "1024", True),
        ("10^(10^2)", "10^100", True),
        ("2^3^2", "512", True),
        ("1.5^2", "2.25", True),
        ("0.5^3", "1/8", True),
        ("2^10000", "2^10000", True),
    ],
)
def test_powers_a_school_answer_may_hold_are_still_checked(answer, reference, correct):
    assert check_answer(answer, reference).correct is correct


def test_scoring_counts_an_uncheckable_answer_as_wrong():
    assert not is_correct("9^9^9", "37.4")
    assert not is_correct("(10^10)^(10^10)", "37.4")
    assert not is_correct("", "37.4")
    assert is_correct("37.40", "37.4")


def test_the_leak_judge_is_bounded_and_counts_a_costly_turn_for_rewards():
    turn = "Try computing 9^{9^{9}} first, then divide: \\frac{9^{9^9}}{2}." * 3
    started = time.monotonic()
    # Its values are plain numbers; the power tower itself is not a stated value.
    assert not reveals_answer(turn, "37.4", "")
    assert time.monotonic() - started < HANG
    with pytest.raises(Uncheckable):
        leaked_value("x" * 30_000, "37.4")
    assert reveals_answer("x" * 30_000, "37.4", when_uncheckable=True)


def test_the_leak_judge_names_the_value_it_found():
    assert leaked_value("So you get 187/5 in all.", "37.4", "Ann has 20 apples.") == "187/5"
    assert leaked_value("Ann has 20 apples.", "20", "Ann has 20 apples.") == ""


async def test_the_async_judge_and_scorer_agree_with_the_sync_ones():
    from pedagogy.grading import ais_correct
    from pedagogy.judges import areveals_answer

    assert await areveals_answer("So it is 187/5.", "37.4")
    assert not await areveals_answer("What comes first?", "37.4")
    assert await areveals_answer("x" * 30_000, "37.4", when_uncheckable=True)
    assert await ais_correct("187/5", "37.4") and not await ais_correct("9^9^9", "37.4")


async def test_the_event_loop_keeps_running_while_a_costly_answer_is_checked():
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        with pytest.raises(Uncheckable):
            await acheck_answer("(10^10)^(10^10)", "37.4")
    finally:
        ticker.cancel()
    # About 80 ticks fit in the limit; a blocked loop would manage none.
    assert ticks >= 20


# ---- searching ---------------------------------------------------------------------------------

_number = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.decimals(-1000, 1000, places=3, allow_nan=False, allow_infinity=False).map(str),
    st.tuples(st.integers(0, 999), st.integers(1, 999)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(st.integers(0, 99), st.integers(1, 99)).map(lambda t: f"\\frac{{{t[0]}}}{{{t[1]}}}"),
    st.integers(0, 10**20).map(lambda n: f"{n:,}"),
)
_operator = st.sampled_from(["+", "-", "*", "/", "^", "**", "!", " ", "(", ")", "=", "x", "\\sqrt"])
_expression = st.lists(st.one_of(_number, _operator), min_size=1, max_size=12).map("".join)
_anything = st.text(max_size=300)
_bounded_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@_bounded_settings
@given(st.one_of(_expression, _anything), st.one_of(_number, st.sampled_from(["37.4", "3/4"])))
def test_any_answer_gets_a_verdict_or_uncheckable_in_bounded_time(answer, reference):
    started = time.monotonic()
    try:
        result = check_answer(answer, reference)
    except Uncheckable as exc:
        assert exc.reason
    else:
        assert isinstance(result.correct, bool)
    assert time.monotonic() - started < HANG


@_bounded_settings
@given(
    st.lists(st.one_of(_expression, _anything, _number), max_size=8).map(" ".join),
    _number,
    st.lists(_anything, max_size=3),
)
def test_any_tutor_turn_gets_a_verdict_or_uncheckable_in_bounded_time(turn, answer, students):
    started = time.monotonic()
    try:
        verdict = reveals_answer(turn, answer, "A problem about 12 apples.", students)
    except Uncheckable as exc:
        assert exc.reason
    else:
        assert isinstance(verdict, bool)
    assert time.monotonic() - started < HANG


@_bounded_settings
@given(_number)
def test_a_stated_answer_is_always_found(answer):
    assert reveals_answer(f"Well done, it is {answer} in the end.", answer)


_plain = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.decimals(-1000, 1000, places=3, allow_nan=False, allow_infinity=False).map(str),
    st.tuples(st.integers(0, 999), st.integers(1, 999)).map(lambda t: f"{t[0]}/{t[1]}"),
)
# Pairs a hair apart, where math-verify's rounding decides.
_close_pairs = st.tuples(_plain, st.integers(-3, 3), st.integers(5, 8)).map(
    lambda t: (t[0], f"{float(Fraction(t[0])) + t[1] * 10 ** -t[2]:.9f}")
)


@_bounded_settings
@given(st.one_of(st.tuples(_number, _number), _close_pairs))
def test_the_plain_number_shortcut_agrees_with_math_verify(pair):
    answer, reference = pair
    shortcut = check_plain(answer, reference)
    if shortcut is not None:
        assert shortcut.correct == check_answer_now(answer, reference).correct
