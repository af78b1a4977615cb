import math

import pytest

from tests.support.dialogues import dialogue
from training.rewards import (
    RewardConfig,
    batch_advantages,
    first_leak,
    group_advantages,
    score_dialogue,
    solve_score,
    summarize,
)
from training.simulated_student import extract_final_answer

pytestmark = pytest.mark.unit


LEAK_FIRST = [
    ("student", "I added 3 and 4 and got 7."),
    ("tutor", "Not quite: 3 bags of 4 is 12, minus 2 gives 10 apples."),
    ("student", "Oh, okay."),
]


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("hard", -0.5), ("soft", 1.0 - 0.5)],
)
def test_leak_on_turn_one_is_penalised_in_both_variants(variant, expected):
    d = dialogue(LEAK_FIRST, ["Final answer: 10", "Final answer: 10"])
    b = score_dialogue(d, RewardConfig(lambda_=0.5, variant=variant, k=2))
    assert b.leaked and b.penalised and not b.judge_rejected
    assert b.leak_turn == 1
    assert b.solve_rate == 1.0
    assert b.total == pytest.approx(expected)


def test_student_who_solves_only_after_the_dialogue_gets_full_credit():
    d = dialogue(
        [
            ("student", "I added 3 and 4 and got 7."),
            ("tutor", "How many apples are in 3 bags if each has 4? Then what happens?"),
            ("student", "Hmm, maybe I should multiply?"),
            ("tutor", "Try it, and remember he eats some."),
        ],
        ["3*4 = 12, 12 - 2 = 10.\nFinal answer: 10"],
    )
    b = score_dialogue(d, RewardConfig(lambda_=1.0, variant="hard", k=1))
    assert not b.leaked
    assert b.solve_rate == 1.0 and b.total == 1.0
    assert b.answers == ("10",) and b.solved == (True,)


def test_confirming_after_the_student_states_the_answer_is_no_leak():
    d = dialogue(
        [
            ("student", "I added 3 and 4 and got 7."),
            ("tutor", "How many apples are in the bags altogether?"),
            ("student", "12, and he eats 2, so 10 apples left!"),
            ("tutor", "Yes, 10 is right. Well done!"),
        ],
        ["Final answer: 10"],
    )
    assert first_leak(d) is None
    assert score_dialogue(d, RewardConfig(k=1)).total == 1.0


def test_problem_data_restated_is_no_leak_but_hidden_thinking_is_ignored():
    d = dialogue(
        [("student", "help"), ("tutor", "Each of the 3 bags holds 4 apples. What next?")],
        ["Final answer: 12"],
    )
    d.turns[1].hidden = "the answer is 10"  # never shown to the student
    b = score_dialogue(d, RewardConfig(k=1))
    assert not b.leaked and b.solve_rate == 0.0 and b.total == 0.0


def test_k_averaging_and_missing_samples_count_as_wrong():
    finals = ["Final answer: 10", "Final answer: 12", "so it is \\boxed{10}", "I don't know"]
    assert solve_score(finals, "10", 4)[0] == 0.5
    assert solve_score(finals[:2], "10", 4)[0] == 0.25  # the server sent 2 of 4
    d = dialogue([("student", "hi"), ("tutor", "What do you know?")], finals)
    b = score_dialogue(d, RewardConfig(k=4, mu=0.5), reward_model=lambda _d: 0.4)
    assert b.solve_rate == 0.5
    assert b.rm_score == 0.4
    assert b.total == pytest.approx(0.5 + 0.5 * 0.4)


def test_style_judge_rejection_penalises_without_a_leak():
    d = dialogue([("student", "hi"), ("tutor", "Just listen to me.")], ["Final answer: 10"])
    hard = score_dialogue(d, RewardConfig(lambda_=1.0, k=1), style_judge=lambda _d: True)
    soft = score_dialogue(
        d, RewardConfig(lambda_=0.25, variant="soft", k=1), style_judge=lambda _d: True
    )
    assert hard.judge_rejected and not hard.leaked and hard.total == -1.0
    assert soft.total == pytest.approx(0.75)


def test_failed_rollout_is_marked_and_left_out_of_the_summary():
    ok = score_dialogue(dialogue(LEAK_FIRST, ["Final answer: 10"]), RewardConfig(k=1))
    failed = score_dialogue(dialogue([], [], error="ModelUnavailable: down"), RewardConfig(k=1))
    assert failed.failed and failed.total == 0.0
    stats = summarize([ok, failed])
    assert stats["failed"] == 1.0 and stats["leak_rate"] == 1.0 and stats["solve_rate"] == 1.0


def test_reward_config_validates():
    with pytest.raises(ValueError):
        RewardConfig(variant="medium")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RewardConfig(k=0)


def test_group_advantages():
    adv = group_advantages([1.0, 0.0, 0.0, 1.0])
    assert adv == pytest.approx([1.0, -1.0, -1.0, 1.0], abs=1e-5)
    assert group_advantages([0.5, 0.5, 0.5]) == [0.0, 0.0, 0.0]
    assert group_advantages([]) == []
    rewards = [0.0, 0.5, 1.0]
    std = math.sqrt(sum((r - 0.5) ** 2 for r in rewards) / 3)
    assert group_advantages(rewards, eps=0.0) == pytest.approx([-0.5 / std, 0.0, 0.5 / std])


def test_batch_advantages_normalise_within_each_group():
    adv = batch_advantages([0, 1, 0, 1], [1.0, 3.0, 0.0, 3.0])
    assert adv == pytest.approx([1.0, 0.0, -1.0, 0.0], abs=1e-5)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("12 - 2 = 10\nFinal answer: 10", "10"),
        ("Final answer: **$10.75**.", "$10.75"),
        ("final answer is 3/4", "3/4"),
        ("Final answer: 7\nWait, no.\nFinal answer: 10 apples", "10 apples"),
        ("so x = \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("first 3 then 4, so 1,250 in total", "1,250"),
        ("I have no idea", ""),
        ("Final answer: \\boxed{42}", "42"),
    ],
)
def test_extract_final_answer(text, answer):
    assert extract_final_answer(text) == answer


def test_extracted_answers_with_units_still_grade():
    assert solve_score(["Final answer: 10 apples"], "10")[0] == 1.0
    assert solve_score(["Final answer: **$10.75**."], "10.75")[0] == 1.0
