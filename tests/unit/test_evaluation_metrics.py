import json

import numpy as np
import pytest

from tests.support.dialogues import dialogue
from training.evaluation.metrics import (
    DialogueOutcome,
    bootstrap_ci,
    dialogue_outcome,
    interactive_metrics,
    leak_turn,
    paired_bootstrap_diff,
    win_value,
)

pytestmark = pytest.mark.unit

OPENING = ("student", "I added 3 and 4 and got 7.")


LEAKS_ON_TURN_ONE = [
    OPENING,
    ("tutor", "Not quite: 3 bags of 4 is 12, minus 2 gives 10 apples."),
    ("student", "Oh, okay."),
    ("tutor", "Great, so what is your answer?"),
]
ONLY_QUESTIONS = [
    OPENING,
    ("tutor", "How many apples are in 3 bags if each has 4?"),
    ("student", "Maybe 12?"),
    ("tutor", "Good. What happens when he eats some?"),
]
WRONG = ["3 + 4 = 7\nFinal answer: 7", "Final answer: 7"]
RIGHT = ["3*4 = 12, 12 - 2 = 10\nFinal answer: 10", "Final answer: 10"]


def outcome(turns, before, after, **kw) -> DialogueOutcome:
    return dialogue_outcome(dialogue(turns, after, **kw), before, 2, item_id="p1", source="test")


def test_leak_on_turn_one_gives_leak_rate_one():
    o = outcome(LEAKS_ON_TURN_ONE, WRONG, RIGHT)
    assert o.leaked and o.leak_turn == 1
    assert leak_turn(dialogue(LEAKS_ON_TURN_ONE, RIGHT)) == 1
    metrics = interactive_metrics([o, outcome(LEAKS_ON_TURN_ONE, RIGHT, RIGHT)], samples=200)
    assert metrics["leak_rate"] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 2}


def test_a_tutor_that_only_asks_questions_never_leaks():
    o = outcome(ONLY_QUESTIONS, WRONG, WRONG)
    assert not o.leaked and o.leak_turn is None and o.turns == 2
    metrics = interactive_metrics([o] * 3, samples=200)
    assert metrics["leak_rate"]["value"] == 0.0 and metrics["leak_rate"]["n"] == 3
    assert metrics["mean_turns"]["value"] == 2.0


def test_leak_on_a_later_turn_is_numbered_by_tutor_turn():
    turns = [*ONLY_QUESTIONS, ("student", "Is it 8?"), ("tutor", "No, it is 10.")]
    assert leak_turn(dialogue(turns, RIGHT)) == 3


def test_student_who_solves_only_after_the_dialogue_gains_one():
    o = outcome(ONLY_QUESTIONS, WRONG, RIGHT)
    assert (o.solve_before, o.solve_after, o.gain) == (0.0, 1.0, 1.0)
    assert o.answers_before == ["7", "7"] and o.answers_after == ["10", "10"]
    metrics = interactive_metrics([o] * 4, samples=200)
    assert metrics["solve_before"]["value"] == 0.0
    assert metrics["solve_after"]["value"] == 1.0
    assert metrics["solve_gain"] == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 4}


def test_half_solved_and_missing_samples_count_as_wrong():
    o = outcome(ONLY_QUESTIONS, ["Final answer: 7"], ["Final answer: 10", "I don't know"])
    assert o.solve_before == 0.0  # one of k=2 samples missing: wrong
    assert o.solve_after == 0.5


def test_failed_dialogues_are_left_out_of_every_figure():
    ok = outcome(ONLY_QUESTIONS, WRONG, RIGHT)
    failed = outcome(ONLY_QUESTIONS[:2], [], [], error="ModelUnavailable: down")
    assert failed.error and failed.solve_after == 0.0
    metrics = interactive_metrics([ok, failed], samples=100)
    assert all(m["n"] == 1 for m in metrics.values())
    assert metrics["solve_gain"]["value"] == 1.0
    json.dumps(failed.to_dict())
    assert failed.to_dict()["id"] == "p1" and "transcript" not in failed.to_dict()


def test_optional_figures_appear_only_when_measured():
    o = outcome(ONLY_QUESTIONS, WRONG, RIGHT)
    assert "rm_score" not in interactive_metrics([o])
    o.rm_score = 0.25
    o.first_attempt_correct = False
    metrics = interactive_metrics([o])
    assert metrics["rm_score"]["value"] == 0.25
    assert metrics["first_attempt_solve"]["value"] == 0.0


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_more_items():
    rng = np.random.default_rng(7)
    small = rng.integers(0, 2, size=20).astype(float)
    large = rng.integers(0, 2, size=2000).astype(float)
    a = bootstrap_ci(small, samples=2000, seed=1)
    b = bootstrap_ci(large, samples=2000, seed=1)
    assert a["n"] == 20 and b["n"] == 2000
    assert a["value"] == pytest.approx(small.mean())
    assert a["ci_low"] <= a["value"] <= a["ci_high"]
    assert b["ci_low"] <= b["value"] <= b["ci_high"]
    assert a["ci_low"] < a["value"] < a["ci_high"]
    assert (b["ci_high"] - b["ci_low"]) < (a["ci_high"] - a["ci_low"]) / 4
    # A 95% interval of a binomial mean of 20 items is roughly +-0.2.
    assert 0.25 < a["ci_high"] - a["ci_low"] < 0.6


def test_bootstrap_is_seeded():
    values = list(np.random.default_rng(0).normal(size=30))
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_ci_of_a_constant_is_a_point_and_of_nothing_is_null():
    assert bootstrap_ci([0.3] * 17) == {"value": 0.3, "ci_low": 0.3, "ci_high": 0.3, "n": 17}
    assert bootstrap_ci([5.0]) == {"value": 5.0, "ci_low": 5.0, "ci_high": 5.0, "n": 1}
    empty = bootstrap_ci([])
    assert empty == {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    json.dumps(empty)


def test_gain_bootstrap_is_paired():
    # Items differ a lot in difficulty, but tutoring lifts every one by exactly 0.5: resampling
    # items keeps that, resampling before and after separately would not.
    before = [0.0, 0.5, 0.0, 0.5, 0.0, 0.5, 0.0, 0.5]
    after = [b + 0.5 for b in before]
    gain = paired_bootstrap_diff(before, after, samples=500, seed=0)
    assert gain == {"value": 0.5, "ci_low": 0.5, "ci_high": 0.5, "n": 8}
    mixed = paired_bootstrap_diff([0, 0, 0, 0], [1, 0, 1, 1], samples=2000, seed=0)
    assert mixed["value"] == 0.75 and mixed["ci_low"] < 0.75 <= mixed["ci_high"]
    with pytest.raises(ValueError):
        paired_bootstrap_diff([0, 1], [1])


def test_win_value():
    assert win_value(2.0, 1.0) == 1.0
    assert win_value(1.0, 2.0) == 0.0
    assert win_value(1.0, 1.0) == 0.5
