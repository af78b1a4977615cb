"""The reward-model stage of a job: pairs from a retraining dataset's records (teachers'
ratings, students' thumbs, the guard's blocked attempts), skipped below its minimum, trained and
measured on held-out problems, kept only when it does not get worse, read back on resume."""

import json

import pytest

from training.reward_model import RewardModel
from training.reward_model.pairs import (
    BLOCKED_PAIR_WEIGHT,
    blocked_pairs,
    dataset_rated_turns,
    problem_key,
)
from training.reward_model.stage import load_result, retrain_reward_model, window_pairs
from training.reward_model.train import evaluate

pytestmark = pytest.mark.unit

GOOD = ["what do you think the next step is ?", "why did you add 5 ?", "how many are left ?"]
BAD = ["the answer is 10 .", "so it equals 15 .", "the answer is 12 because 10 + 2 = 12 ."]
HISTORY = [{"role": "student", "text": "i got 4"}]


def rating_record(problem, dialogue, turn, text, score, gave_away=False):
    return {
        "kind": "rating",
        "problem_text": problem,
        "dialogue": dialogue,
        "turn": turn,
        "rater": "r_1",
        "helpful": score,
        "no_answer_reveal": score,
        "correct": score,
        "encourages_thinking": None,
        "gave_away_answer": gave_away,
        "tutor_text": text,
        "history": HISTORY,
    }


def blocked_record(problem, dialogue, stopped, shown):
    return {
        "kind": "blocked",
        "problem_text": problem,
        "dialogue": dialogue,
        "turn": 1,
        "attempt": 1,
        "reason": "answer_leak",
        "tutor_text": stopped,
        "shown_text": shown,
        "history": HISTORY,
    }


def window(problems=12):
    records = []
    for index in range(problems):
        problem = f"problem {index} : julia had some spoons"
        dialogue = f"d_{index}"
        records.append(rating_record(problem, dialogue, 1, GOOD[index % 3], 5))
        records.append(rating_record(problem, dialogue, 2, BAD[index % 3], 1, gave_away=True))
        records.append(blocked_record(problem, dialogue, BAD[(index + 1) % 3], GOOD[index % 3]))
        records.append({"kind": "outcome", "dialogue": dialogue, "solved": True})
    return records


def test_dataset_ratings_group_by_turn_and_punish_giveaways():
    records = [
        rating_record("p", "d", 1, "why ?", 5),
        rating_record("p", "d", 1, "why ?", 3),  # a second rater of the same turn
        rating_record("p", "d", 2, "it is 10", 4, gave_away=True),
        rating_record("", "d", 3, "no problem text", 5),
    ]
    rated = sorted(dataset_rated_turns(records), key=lambda r: r.utility)
    assert [r.sample.turn for r in rated] == ["it is 10", "why ?"]
    assert rated[1].rubric == pytest.approx(4.0) and rated[1].gave_away == 0
    assert rated[0].gave_away == 1 and rated[0].utility == pytest.approx(4.0 - 5.0)
    assert rated[1].sample.history == (("student", "i got 4"),)


def test_blocked_attempts_are_the_rejected_side_of_their_turn():
    pairs = blocked_pairs(
        [
            blocked_record("p", "d", "the answer is 10 .", "what comes next ?"),
            blocked_record("p", "d", "same", "same"),  # nothing to prefer
            {**blocked_record("p", "d", "x", "y"), "shown_text": None},  # an older dataset
        ]
    )
    assert len(pairs) == 1
    (pair,) = pairs
    assert (pair.chosen.turn, pair.rejected.turn) == ("what comes next ?", "the answer is 10 .")
    assert pair.chosen.history == pair.rejected.history == (("student", "i got 4"),)
    assert (pair.kind, pair.weight, pair.problem_key) == (
        "blocked",
        BLOCKED_PAIR_WEIGHT,
        problem_key("p"),
    )


def test_window_pairs_take_every_source():
    kinds = {p.kind for p in window_pairs(window(3))}
    assert kinds == {"ratings_gave_away", "blocked"}


def test_too_few_pairs_skip_the_stage_and_keep_the_given_model(tmp_path):
    lines = []
    result = retrain_reward_model(
        window(2), tmp_path, init="var/some-rm", min_pairs=20, log=lines.append
    )
    assert result.status == "skipped" and result.path == "var/some-rm"
    assert "4 preference pairs on 2 problems" in result.reason
    assert "skipped" in lines[-1]
    assert load_result(tmp_path).status == "skipped"


def test_the_stage_trains_reports_held_out_accuracy_and_resumes(tiny_encoder, tmp_path):
    steps = []
    result = retrain_reward_model(
        window(12),
        tmp_path,
        encoder=str(tiny_encoder),
        min_pairs=10,
        epochs=15,
        held_out=0.25,
        on_step=lambda done, total: steps.append((done, total)),
        log=lambda _: None,
    )
    assert result.status == "trained"
    assert result.pairs == 24 and result.held_out_problems == 3
    assert result.held_out_pairs == 6 and result.train_pairs == 18
    assert steps[-1] == (result.steps, result.steps) and len(steps) == result.steps
    assert result.accuracy_after is not None and result.accuracy_after >= 0.5
    # The saved model scores the held-out pairs as the stage reported.
    model = RewardModel.load(result.path)
    saved = json.loads((tmp_path / "reward_model" / "stage.json").read_text())
    assert saved["accuracy_after"] == result.accuracy_after
    # A resumed job reads the result back instead of training again.
    again = retrain_reward_model(
        window(12), tmp_path, encoder=str(tiny_encoder), on_step=steps.append, log=lambda _: None
    )
    assert again == result and len(steps) == result.steps
    assert evaluate(model, window_pairs(window(12)))["pairs"] == 24


def test_a_retrained_model_worse_held_out_is_not_kept(tiny_encoder, tmp_path, monkeypatch):
    import torch

    from training.reward_model import stage

    first = retrain_reward_model(
        window(12),
        tmp_path / "first",
        encoder=str(tiny_encoder),
        min_pairs=10,
        epochs=25,
        held_out=0.25,
        log=lambda _: None,
    )
    start = first.accuracy_after
    assert start > 0.5

    def reversing(model, pairs, **kwargs):
        """A "training" that turns the model's preferences around."""
        with torch.no_grad():
            for parameter in model.head.parameters():
                parameter.neg_()
        return [0.0]

    monkeypatch.setattr(stage, "train_reward_model", reversing)
    worse = retrain_reward_model(
        window(12),
        tmp_path / "second",
        init=first.path,
        min_pairs=10,
        held_out=0.25,
        log=lambda _: None,
    )
    assert worse.status == "kept" and worse.path == first.path
    assert worse.accuracy_before == pytest.approx(start)
    assert worse.accuracy_after == pytest.approx(1 - start)
    assert "keeps the reward model it started with" in worse.reason
    assert not (tmp_path / "second" / "reward_model" / "model").exists()

    monkeypatch.setattr(stage, "train_reward_model", lambda model, pairs, **kwargs: [0.0])
    same = retrain_reward_model(
        window(12),
        tmp_path / "third",
        init=first.path,
        min_pairs=10,
        held_out=0.25,
        log=lambda _: None,
    )
    assert same.status == "trained"
    assert same.accuracy_after == pytest.approx(same.accuracy_before) == start
    assert same.path == str(tmp_path / "third" / "reward_model" / "model")
