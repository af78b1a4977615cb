"""The push benchmark's own logic: the push set, the choice of problems, the placeholders, the
Wilson intervals and the rates; and the guard-hold replay of the chat latency benchmark."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.pushes import (
    CATEGORIES,
    MIN_PUSHES,
    RIGHT_VALUE_CATEGORIES,
    BenchProblem,
    Push,
    PushSetError,
    ReplyRecord,
    answer_number,
    choose_problems,
    fill,
    heldout_bank,
    load_pushes,
    parse_push,
    summarize,
    wilson,
    wrong_value,
)

pytestmark = pytest.mark.unit


# ---- Wilson intervals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (1, 100, 0.0018, 0.0545),
        (0, 129, 0.0, 0.0289),
    ],
)
def test_wilson_matches_known_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson(k, n)
    assert got is not None
    assert got[0] == pytest.approx(low, abs=1e-4)
    assert got[1] == pytest.approx(high, abs=1e-4)


def test_wilson_without_trials_and_with_impossible_counts() -> None:
    assert wilson(0, 0) is None
    with pytest.raises(ValueError):
        wilson(3, 2)
    with pytest.raises(ValueError):
        wilson(-1, 2)


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_holds_the_observed_rate_inside_0_1(kn: tuple[int, int]) -> None:
    k, n = kn
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    # Symmetric: failures mirror successes.
    mirror = wilson(n - k, n)
    assert mirror[0] == pytest.approx(1 - high, abs=1e-12)


@given(st.integers(0, 50), st.integers(1, 50))
def test_wilson_narrows_with_more_trials_at_the_same_rate(k: int, extra: int) -> None:
    n = k + extra
    small, large = wilson(k, n), wilson(k * 4, n * 4)
    assert large[1] - large[0] < small[1] - small[0]


# ---- the push set ------------------------------------------------------------------------------


def test_the_project_push_set_is_valid_and_covers_every_category() -> None:
    pushes = load_pushes()
    assert len(pushes) >= MIN_PUSHES
    assert {p.category for p in pushes} == set(CATEGORIES)
    assert len({p.id for p in pushes}) == len(pushes)
    pressure = [p for p in pushes if p.category == "pressure"]
    assert pressure and all(len(p.turns) == 3 for p in pressure)
    # Yes/no confirmations with a wrong value and with the right one.
    assert any("{wrong}" in t for p in pushes if p.category == "confirm_wrong" for t in p.turns)
    assert all(
        any("{answer}" in t for t in p.turns) for p in pushes if p.category == "confirm_right"
    )


def write(tmp_path, rows: list[dict]):
    path = tmp_path / "pushes.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ({"id": "a", "category": "nope", "turns": ["x"]}, "unknown category"),
        ({"id": "a", "category": "direct", "turns": []}, "turns"),
        ({"id": "a", "category": "direct", "turns": ["a", "b", "c", "d"]}, "turns"),
        ({"id": "a", "category": "pressure", "turns": ["a", "b"]}, "3 turns"),
        ({"id": "a", "category": "direct", "turns": ["give me {answer}"]}, "{answer}"),
        ({"id": "a", "category": "direct", "turns": ["is it {right}?"]}, "placeholder"),
        ({"id": "a", "category": "confirm_right", "turns": ["is it 5?"]}, "{answer}"),
        ({"id": "A B", "category": "direct", "turns": ["x"]}, "bad id"),
        ({"id": "a", "category": "direct", "turns": ["x" * 501]}, "chars"),
        ({"id": "a", "category": "direct", "turns": ["x"], "extra": 1}, "keys"),
    ],
)
def test_malformed_pushes_are_refused(row: dict, why: str) -> None:
    with pytest.raises(PushSetError, match=why.replace("{", r"\{").replace("}", r"\}")):
        parse_push(json.dumps(row), 1)


def test_a_set_with_duplicates_or_too_few_pushes_is_refused(tmp_path) -> None:
    row = {"id": "a", "category": "direct", "turns": ["x"]}
    with pytest.raises(PushSetError, match="duplicate"):
        load_pushes(write(tmp_path, [row, row]), minimum=0)
    with pytest.raises(PushSetError, match="at least"):
        load_pushes(write(tmp_path, [row]))
    assert load_pushes(write(tmp_path, [row]), minimum=0) == [Push("a", "direct", ("x",))]


def test_not_json_is_refused() -> None:
    with pytest.raises(PushSetError, match="not JSON"):
        parse_push("{id: 1", 3)


# ---- placeholders ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [("75", Fraction(75)), ("5/36", Fraction(5, 36)), ("2.5", Fraction(5, 2)), ("1,000", 1000)],
)
def test_plain_answers_are_read_as_numbers(answer: str, value: Fraction) -> None:
    assert answer_number(answer) == value


@pytest.mark.parametrize("answer", ["x + 1", "{1, 2}", "9" * 41, "1e400", "", "3/0"])
def test_other_answers_are_not_numbers(answer: str) -> None:
    assert answer_number(answer) is None


@given(st.integers(-(10**12), 10**12))
def test_a_wrong_integer_is_never_the_answer(value: int) -> None:
    wrong = wrong_value(str(value))
    assert answer_number(wrong) is not None and answer_number(wrong) != value


@given(st.integers(-999, 999), st.integers(2, 999))
def test_a_wrong_fraction_is_never_the_answer(numerator: int, denominator: int) -> None:
    answer = f"{numerator}/{denominator}"
    assert answer_number(wrong_value(answer)) != Fraction(numerator, denominator)


def test_fill_replaces_only_the_placeholders() -> None:
    assert fill("Is it {wrong}? Or {answer}? {x}", "75") == "Is it 82? Or 75? {x}"
    assert fill("Is it {wrong}?", "x + 1") == "Is it 12?"


def test_every_push_on_every_bank_problem_fills_cleanly() -> None:
    for push in load_pushes():
        for problem in heldout_bank():
            for turn in push.turns:
                text = fill(turn, problem.final_answer)
                assert "{wrong}" not in text and "{answer}" not in text
                if "{wrong}" in turn:
                    assert wrong_value(problem.final_answer) != problem.final_answer


# ---- problems ----------------------------------------------------------------------------------


def problems(source: str, count: int) -> list[BenchProblem]:
    return [BenchProblem(f"{source}:{i}", source, f"text {i}", str(i)) for i in range(count)]


def test_the_bank_split_is_the_evaluation_split() -> None:
    from training.dataset import is_heldout

    bank = heldout_bank()
    assert bank, "the starter bank has held-out problems"
    assert all(is_heldout(p.problem_id) and p.problem_id.startswith("bank:starter:") for p in bank)


def test_problems_are_chosen_reproducibly_from_both_sources() -> None:
    pushes = [Push(f"p{i}", "direct", ("x",)) for i in range(9)]
    bank, mathdial = problems("bank", 5), problems("mathdial", 40)
    plan = choose_problems(pushes, bank, mathdial, 3, seed=1)
    assert plan == choose_problems(pushes, bank, mathdial, 3, seed=1)
    assert plan != choose_problems(pushes, bank, mathdial, 3, seed=2)
    assert len(plan) == 27
    sources = [problem.source for _, problem in plan]
    assert sources.count("bank") == 3 and sources.count("mathdial") == 24
    for push in pushes:  # no problem twice for one push
        ids = [problem.problem_id for p, problem in plan if p == push]
        assert len(ids) == len(set(ids)) == 3


def test_one_source_alone_is_enough() -> None:
    pushes = [Push(f"p{i}", "direct", ("x",)) for i in range(4)]
    assert len(choose_problems(pushes, problems("bank", 5), [], 2, 0)) == 8
    assert len(choose_problems(pushes, [], problems("mathdial", 5), 2, 0)) == 8


# ---- rates -------------------------------------------------------------------------------------


def record(push: str, category: str, problem: str, turn: int = 0, **flags) -> ReplyRecord:
    return ReplyRecord(push, category, problem, "bank", turn, "student", **flags)


def test_rates_per_reply_and_per_dialogue_leave_right_value_pushes_out() -> None:
    assert "confirm_right" in RIGHT_VALUE_CATEGORIES
    records = [
        # a 3-turn dialogue: the model leaked on its second reply, the guard stopped it
        record("p1", "pressure", "a", 0),
        record("p1", "pressure", "a", 1, model_leak=True, attempts=2, guard="retried"),
        record("p1", "pressure", "a", 2),
        # a clean one-turn dialogue, and one that ended in the fallback
        record("p2", "direct", "b"),
        record("p3", "direct", "c", model_leak=True, attempts=3, guard="fallback"),
        # the student said the right value: the tutor confirmed it; not a leak to count
        record("p4", "confirm_right", "d", visible_leak=True),
        # arithmetic: stopped at model level, and one false claim that got through
        record("p5", "direct", "e", model_false_arithmetic=True, attempts=2, guard="retried"),
        record("p6", "direct", "f", visible_false_claims=["2 + 2 = 5"]),
    ]
    summary = summarize(records)
    assert summary["replies"] == 8 and summary["dialogues"] == 6
    assert summary["counted_replies"] == 7 and summary["counted_dialogues"] == 5
    assert summary["model_leak_per_reply"]["k"] == 2
    assert summary["model_leak_per_reply"]["n"] == 7
    assert summary["model_leak_per_dialogue"]["k"] == 2
    assert summary["model_leak_per_dialogue"]["n"] == 5
    assert summary["visible_leak_per_reply"]["k"] == 0
    assert summary["visible_leak_per_dialogue"]["rate"] == 0
    assert summary["model_false_arithmetic_per_reply"]["k"] == 1
    assert summary["visible_false_arithmetic_per_reply"]["k"] == 1
    assert summary["retry_share"]["k"] == 3
    assert summary["fallback_share"]["k"] == 1
    low, high = summary["model_leak_per_reply"]["ci95"]
    assert low < 2 / 7 < high
    assert summary["visible_leak_per_reply"]["ci95"][0] == 0


def test_failed_replies_are_errors_not_clean_replies() -> None:
    summary = summarize(
        [record("p1", "direct", "a", error="ModelUnavailable: down"), record("p2", "direct", "b")]
    )
    assert summary["errors"] == 1
    assert summary["replies"] == 1
    assert summary["visible_leak_per_reply"]["n"] == 1


def test_an_empty_run_has_no_rates() -> None:
    summary = summarize([])
    assert summary["model_leak_per_reply"] == {"k": 0, "n": 0, "rate": None, "ci95": None}


# ---- the chat latency benchmark's guard replay ---------------------------------------------


def test_the_guard_replay_counts_held_characters_and_their_wait() -> None:
    from benchmarks.chat_latency import guard_hold, summarize_hold
    from pedagogy.guard import AnswerGuard

    def guard() -> AnswerGuard:
        return AnswerGuard("6", "Solve for $x$: $3x + 7 = 25$.", ["help"])

    # "7" could grow into a longer number: it waits for the next delta.
    chunks = [(10.0, "Subtract "), (20.0, "7"), (30.0, " from both sides.")]
    replay = guard_hold(chunks, guard)
    assert replay["stopped"] is False
    assert replay["deltas"] == 3
    assert replay["held_chars_max"] >= 1
    assert replay["held_ms_max"] >= 10.0
    assert 0 <= replay["held_ms_mean"] <= replay["held_ms_max"]
    # A reply that states the answer is replayed up to where the guard stops it.
    stopped = guard_hold([(5.0, "So x = 6"), (9.0, ". Done.")], guard)
    assert stopped["stopped"] is True
    summary = summarize_hold([replay, stopped])
    assert summary["replies"] == 2 and summary["stopped"] == 1
    assert summary["held_chars_max"] == max(replay["held_chars_max"], stopped["held_chars_max"])
    assert not math.isnan(summary["held_chars_mean"])
