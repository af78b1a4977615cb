"""Training steps draw from the informative band; the dataset file carries the calibrated
solve rates (and files without them still read)."""

import dataclasses
import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.dataset import problem_to_dict, read_dataset, solve_rate_of, write_dataset
from training.grpo_rollouts import band_pools
from training.jobs import TrainJobConfig
from training.rollout import Completion, RolloutProblem

pytestmark = pytest.mark.unit


def problem(pid: str, category: str = "general") -> RolloutProblem:
    return RolloutProblem(
        problem_id=pid, text=f"Problem {pid}: 3 + 4?", final_answer="7", category=category
    )


def pools(by_category, rates, minimum, low=0.01, high=0.60):
    return band_pools(
        by_category,
        rates,
        minimum=minimum,
        low=low,
        high=high,
        rng=random.Random(0),
        log=lambda _: None,
    )


def ids(pool) -> set[str]:
    return {p.problem_id for problems in pool.values() for p in problems}


# ---- band selection ----------------------------------------------------------------------------


def test_out_of_band_problems_are_left_out_when_enough_are_in_band():
    by_category = {
        "a": [problem("easy", "a"), problem("mid1", "a")],
        "b": [problem("never", "b"), problem("mid2", "b"), problem("new", "b")],
        "c": [problem("always", "c")],
    }
    rates = {"easy": 0.875, "mid1": 0.25, "never": 0.0, "mid2": 0.5, "always": 1.0}
    chosen = pools(by_category, rates, minimum=2)
    # in band, plus the one never calibrated; category c is left empty, so dropped
    assert ids(chosen) == {"mid1", "mid2", "new"}
    assert set(chosen) == {"a", "b"}


def test_too_few_in_band_keeps_the_nearest_outside_it():
    by_category = {"g": [problem("never"), problem("mid"), problem("easy"), problem("always")]}
    rates = {"never": 0.0, "mid": 0.25, "easy": 0.75, "always": 1.0}
    # 0.0 is 0.01 from the band, 0.75 is 0.15 from it: "never" is nearer
    assert ids(pools(by_category, rates, minimum=2)) == {"mid", "never"}
    assert ids(pools(by_category, rates, minimum=3)) == {"mid", "never", "easy"}
    assert ids(pools(by_category, rates, minimum=9)) == {"mid", "never", "easy", "always"}


def test_without_rates_nothing_is_left_out():
    by_category = {"a": [problem("1", "a")], "b": [problem("2", "b")]}
    assert pools(by_category, {}, minimum=2) == by_category


def test_the_band_follows_the_config():
    by_category = {"g": [problem("x"), problem("y")]}
    rates = {"x": 0.75, "y": 0.25}
    assert ids(pools(by_category, rates, minimum=1, low=0.5, high=1.0)) == {"x"}


@given(
    rates=st.lists(st.one_of(st.none(), st.floats(0.0, 1.0)), min_size=1, max_size=20),
    minimum=st.integers(1, 25),
)
def test_pools_are_never_short_and_keep_every_in_band_and_uncalibrated_problem(rates, minimum):
    problems = [problem(str(i), f"c{i % 3}") for i in range(len(rates))]
    by_category: dict[str, list[RolloutProblem]] = {}
    for p in problems:
        by_category.setdefault(p.category, []).append(p)
    rate_of = {str(i): r for i, r in enumerate(rates) if r is not None}
    chosen = ids(pools(by_category, rate_of, minimum))
    assert len(chosen) >= min(minimum, len(problems))
    for i, rate in enumerate(rates):
        if rate is None or 0.01 <= rate <= 0.60:
            assert str(i) in chosen
    eligible = sum(r is None or 0.01 <= r <= 0.60 for r in rates)
    if eligible >= minimum:
        assert len(chosen) == eligible


# ---- a step draws only in-band problems (fake model server) ------------------------------------


class FakePublisher:
    current = "job-x-step0"


class FakeTrainer:
    class state:
        global_step = 0


class RecordingChat:
    """A tutor that asks, a student that answers 7; remembers the problems the step used."""

    def __init__(self):
        self.seen: set[str] = set()
        self.calls = 0

    async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, extra_body=None):
        self.calls += 1
        text = " ".join(m["content"] for m in messages)
        self.seen.update(word.rstrip(":") for word in text.split() if word.startswith("band-"))
        if endpoint.model == FakePublisher.current:
            return [Completion(text="What do you get when you add them?")]
        return [Completion(text="Final answer: 7") for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from inference.models import default_model_dir

    return AutoTokenizer.from_pretrained(default_model_dir())


def test_a_step_rolls_out_only_in_band_problems(tokenizer):
    from training.curriculum import SelfEvolvingCurriculum
    from training.grpo_rollouts import TutorRollouts

    config = TrainJobConfig(
        group_size=2, problems_per_step=2, max_turns=1, k=1, concurrency=1, guard_retries=None
    )
    in_band = [problem(f"band-in{i}", c) for i, c in enumerate("ab")]
    outside = [problem("band-out0", "a"), problem("band-out1", "c")]
    by_category = {"a": [in_band[0], outside[0]], "b": [in_band[1]], "c": [outside[1]]}
    rates = {"band-in0": 0.25, "band-in1": 0.5, "band-out0": 0.0, "band-out1": 1.0}
    chat = RecordingChat()
    rollouts = TutorRollouts(
        config,
        tokenizer,
        by_category,
        SelfEvolvingCurriculum(sorted(by_category), seed=0),
        FakePublisher(),
        log=lambda _: None,
        chat=chat,
        solve_rates=rates,
    )
    for step in range(3):
        FakeTrainer.state.global_step = step
        rollouts(["slot"] * 4, FakeTrainer())
        drawn = {d.problem.problem_id for d in rollouts.last.dialogues}
        assert drawn <= {"band-in0", "band-in1"}
    assert chat.seen and chat.seen <= {"band-in0", "band-in1"}


def test_the_config_has_the_band_and_the_calculator():
    config = TrainJobConfig()
    assert (config.band_low, config.band_high, config.calculator) == (0.01, 0.60, False)
    again = TrainJobConfig.from_dict(config.to_dict())
    assert again.band_high == 0.60


# ---- the dataset file --------------------------------------------------------------------------


def test_solve_rates_are_written_and_read_back(tmp_path):
    path = tmp_path / "d.jsonl"
    problems = [problem("p1"), problem("p2"), problem("p3")]
    write_dataset(path, problems, [{"kind": "outcome"}], solve_rates={"p1": 0.25, "p2": None})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["solve_rate"] == 0.25
    assert "solve_rate" not in lines[1] and "solve_rate" not in lines[2]
    dataset = read_dataset(path)
    assert dataset.solve_rates == {"p1": 0.25}
    assert [p.problem_id for p in dataset.problems] == ["p1", "p2", "p3"]


def test_older_files_without_rates_still_read(tmp_path):
    path = tmp_path / "old.jsonl"
    old_line = problem_to_dict(problem("p1"))
    assert "solve_rate" not in old_line
    path.write_text(json.dumps(old_line) + "\n")
    dataset = read_dataset(path)
    assert dataset.solve_rates == {} and dataset.problems[0] == problem("p1")


def test_a_rate_is_kept_beside_the_problem_not_on_it(tmp_path):
    path = tmp_path / "d.jsonl"
    line = problem_to_dict(problem("p1"), 0.5)
    path.write_text(json.dumps(line) + "\n")
    assert read_dataset(path).problems[0] == dataclasses.replace(problem("p1"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, 0.5),
        (0, 0.0),
        (1, 1.0),
        (None, None),
        (True, None),
        ("0.5", None),
        (1.5, None),
        (-0.1, None),
        (float("nan"), None),
        ([0.5], None),
    ],
)
def test_solve_rate_of_accepts_only_rates(value, expected):
    assert solve_rate_of({"solve_rate": value}) == expected


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_solve_rate_of_never_raises_and_gives_a_rate_or_none(value):
    rate = solve_rate_of({"solve_rate": value})
    assert rate is None or 0.0 <= rate <= 1.0
