"""The training dataset file and the fixed MathDial train / held-out split."""

import json
from pathlib import Path

import pytest

from training.data.mathtutorbench import shared_data_dir
from training.dataset import (
    HELDOUT_FRACTION,
    DatasetError,
    mathdial_problems,
    read_dataset,
    write_dataset,
)
from training.rollout import RolloutProblem
from training.simulated_student import StudentProfile

pytestmark = pytest.mark.unit

MATHDIAL = shared_data_dir() / "mathdial_test.jsonl"


def test_problems_and_records_round_trip(tmp_path: Path):
    problems = [
        RolloutProblem(
            problem_id="bank:1",
            text="What is $3x$ when $x = 2$?",
            final_answer="6",
            category="algebra",
            instructions=("Use the word 'product'.",),
            student=StudentProfile(name="Ana", profile="Ana likes drawing."),
        ),
        RolloutProblem(problem_id="bank:2", text="1 + 1?", final_answer="2"),
    ]
    rating = {"kind": "rating", "scores": {"scaffolding": 4}, "move": "probing"}
    path = tmp_path / "d" / "dataset.jsonl"
    assert write_dataset(path, problems, [rating]) == 2
    dataset = read_dataset(path)
    assert dataset.problems[0] == problems[0]
    assert dataset.problems[1] == problems[1]
    assert dataset.records == [rating]
    assert set(dataset.by_category()) == {"algebra", "general"}


def test_malformed_files_are_refused_with_the_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"kind": "problem", "text": "no answer"}) + "\n")
    with pytest.raises(DatasetError, match="lacks a field"):
        read_dataset(path)
    path.write_text('{"kind": "problem"\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1: not JSON"):
        read_dataset(path)
    path.write_text(json.dumps({"kind": "rating"}) + "\n")
    with pytest.raises(DatasetError, match="no problem"):
        read_dataset(path)


def test_the_held_out_split_is_fixed_and_disjoint_from_training():
    train = mathdial_problems(MATHDIAL, split="train")
    heldout = mathdial_problems(MATHDIAL, split="heldout")
    everything = mathdial_problems(MATHDIAL)
    assert {p.problem_id for p in train}.isdisjoint(p.problem_id for p in heldout)
    assert len(train) + len(heldout) == len(everything)
    assert abs(len(heldout) / len(everything) - HELDOUT_FRACTION) < 0.06
    assert [p.problem_id for p in mathdial_problems(MATHDIAL, split="heldout")] == [
        p.problem_id for p in heldout
    ]
    assert all(p.student is not None for p in train[:5])
    assert len(mathdial_problems(MATHDIAL, split="train", limit=7)) == 7
    with pytest.raises(ValueError):
        mathdial_problems(MATHDIAL, split="test")


def test_the_command_line_maps_every_job_option():
    from training.retrain import build_parser

    args = build_parser().parse_args(
        ["--mathdial", "x.jsonl", "--workdir", "w", "--lambda", "0.5", "--no-curriculum",
         "--steps", "3", "--learning-rate", "1e-4", "--init-adapter", "a"]
    )  # fmt: skip
    assert args.lambda_ == 0.5 and args.curriculum is False and args.steps == 3
    assert args.learning_rate == 1e-4 and args.init_adapter == "a" and args.reward_model is None
