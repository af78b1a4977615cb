"""The retraining tasks: progress, cancel, redelivery after a lost worker, registering the
version, and the evaluation with its gate.

The trainer is the fake in tests/support/fake_training.py (the same contract as
``training.grpo.train``); these tests are about the logic around it. The last ones
run real Celery workers over Redis: one in this process, one in a process of its own whose
worker child is killed mid-job.
"""

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from tests.conftest import celery_worker, purge_queues
from tests.support import fake_training
from tests.support.retraining import GOOD, LEAKY, finished_eval, make_version
from tests.support.scripted_model_server import ScriptedModelServer
from tests.support.waiting import wait_for
from tests.support.worker_process import WorkerProcess
from training.jobs import TrainJobConfig
from tutor.celery import app
from tutor.dialogues.models import TutoringSession
from tutor.retraining import jobs, runner, services
from tutor.retraining.models import EvalRun, ModelVersion, TrainingJob

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAKE = "tests.support.fake_training.run_training_job"


@pytest.fixture(autouse=True)
def retraining_settings(settings, tmp_path, monkeypatch):
    settings.TUTOR_TRAINING_FUNCTION = FAKE
    settings.TUTOR_TRAINING_DIR = tmp_path / "training"
    settings.TUTOR_ADAPTER_DIR = tmp_path / "adapters"
    settings.TUTOR_JOB_HEARTBEAT_SECONDS = 0.2
    settings.TUTOR_JOB_STALE_SECONDS = 2.0
    for name in ("FAKE_TRAINING_STEP_SECONDS", "FAKE_TRAINING_DIE_AT"):
        monkeypatch.delenv(name, raising=False)
    return settings


@pytest.fixture
def queued_evals(monkeypatch):
    """Evaluations the runner queues, instead of publishing them."""
    started = []
    monkeypatch.setattr(
        jobs, "start_evaluation", lambda version, user=None, **kw: started.append(version)
    )
    return started


@pytest.fixture
def job(make_user, problem):
    admin = make_user("root", role="admin")
    student = make_user("stu")
    TutoringSession.objects.create(student=student, problem=problem)
    base = services.base_version()
    config = TrainJobConfig(steps=5, lambda_=0.5, problems_per_step=1)
    return TrainingJob.objects.create(
        created_by=admin, base_version=base, config=config.to_dict(), total_steps=5
    )


def test_a_job_runs_reports_progress_and_registers_a_candidate(job, queued_evals, settings):
    assert runner.run_training(job.pk, task_id="task-1") == runner.SUCCEEDED
    job.refresh_from_db()
    assert job.status == "succeeded" and job.finished_at is not None
    assert (job.step, job.total_steps, job.percent, job.attempts) == (5, 5, 100, 1)
    assert [h["step"] for h in job.history] == [1, 2, 3, 4, 5]
    assert job.history[-1]["reward_mean"] == 0.5 and job.history[0]["lambda"] == 0.5
    assert job.metrics["kl"] == 0.05
    assert job.checkpoint_path.endswith("checkpoint.json")
    assert job.dataset_stats["problems"] >= 1
    assert Path(job.dataset_path).exists()
    assert "exported 1 problems" in job.log and "step 5 done" in job.log
    assert job.celery_task_id == "task-1"
    version = job.result_version
    assert version.name == "tutor-v1" and version.status == "candidate"
    assert version.parent == job.base_version and version.training_job == job
    assert version.metrics == {"reward_mean": 0.9, "solve_rate": 0.6, "leak_rate": 0.1, "kl": None}
    assert Path(version.adapter_path) == settings.TUTOR_ADAPTER_DIR / "tutor-v1"
    assert (Path(version.adapter_path) / "adapter_config.json").exists()
    assert queued_evals == [version]
    # A duplicate delivery of a finished job does nothing.
    assert runner.run_training(job.pk) == runner.FINISHED
    assert ModelVersion.objects.filter(training_job=job).count() == 1


def test_cancel_stops_a_running_job_at_its_next_step(job, queued_evals, monkeypatch):
    monkeypatch.setenv("FAKE_TRAINING_STEP_SECONDS", "0.2")
    TrainingJob.objects.filter(pk=job.pk).update(
        config={**job.config, "steps": 200}, total_steps=200
    )
    outcome = []

    def work():
        try:
            outcome.append(runner.run_training(job.pk))
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 30
    while TrainingJob.objects.get(pk=job.pk).step < 2:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.1)
    jobs.request_cancel(job)
    job.refresh_from_db()
    assert job.status == "running" and job.cancel_requested  # its worker is alive
    thread.join(30)
    assert outcome == [runner.CANCELLED]
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert 2 <= job.step < 20
    assert "cancelled" in job.log
    assert job.result_version is None and queued_evals == []


def test_cancelling_a_queued_job_ends_it_before_it_starts(job, queued_evals):
    jobs.request_cancel(job)
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert runner.run_training(job.pk) == runner.FINISHED
    job.refresh_from_db()
    assert job.attempts == 0 and job.history == []


def test_a_lost_worker_is_waited_for_then_resumed_from_the_checkpoint(
    job, queued_evals, monkeypatch, settings
):
    monkeypatch.setenv("FAKE_TRAINING_DIE_AT", "4")
    with pytest.raises(fake_training.WorkerDied):
        runner.run_training(job.pk, task_id="t")
    job.refresh_from_db()
    assert job.status == "running" and job.step == 3
    workdir = Path(job.workdir)

    # Delivered again while the heartbeat is fresh: another worker may still run it.
    assert runner.run_training(job.pk, task_id="t") == runner.BUSY
    job.refresh_from_db()
    assert job.attempts == 1

    # The heartbeat goes stale: the next delivery resumes from step 3, not from scratch.
    TrainingJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=10)
    )
    assert runner.run_training(job.pk, task_id="t") == runner.SUCCEEDED
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2
    assert [line.split()[1] for line in (workdir / "calls.txt").read_text().splitlines()] == [
        "0",
        "3",
    ]
    assert [h["step"] for h in job.history] == [1, 2, 3, 4, 5]
    assert "resuming from the last checkpoint" in job.log
    assert job.log.count("exported") == 1  # the dataset was exported once
    assert ModelVersion.objects.filter(training_job=job).count() == 1


def test_a_trainer_error_fails_the_job_with_the_reason(job, queued_evals, settings):
    settings.TUTOR_TRAINING_FUNCTION = "training.jobs.TrainJobConfig"  # wrong signature
    assert runner.run_training(job.pk) == runner.FAILED
    job.refresh_from_db()
    assert job.status == "failed" and "TypeError" in job.error
    assert "failed:" in job.log and "Traceback" in job.log


def test_progress_after_a_resume_drops_the_redone_steps(job):
    from training.jobs import Progress

    job.history = [{"step": s, "reward_mean": s} for s in (1, 2, 3, 4)]
    jobs.apply_progress(job, Progress(step=2, total_steps=5))
    assert [h["step"] for h in job.history] == [1, 2]
    jobs.apply_progress(job, Progress(step=3, total_steps=5, metrics={"kl": float("inf")}))
    assert job.history[-1] == {"step": 3, "kl": None}


# ---- evaluation -------------------------------------------------------------------------------


@pytest.fixture
def fake_evaluation(monkeypatch):
    """``run_evaluation`` returning a given report, reporting progress as the real one does."""
    import training.evaluation as evaluation

    calls = []

    def install(report):
        def run_evaluation(config, progress=None, **kwargs):
            calls.append(config)
            for done in range(1, 4):
                if progress:
                    progress(done, 3, "interactive")
            return report

        monkeypatch.setattr(evaluation, "run_evaluation", run_evaluation)
        return calls

    return install


def test_evaluation_loads_the_adapter_and_stores_report_headline_and_gate(
    fake_evaluation, settings, make_user
):
    admin = make_user("root", role="admin")
    active = make_version("tutor-v1")
    finished_eval(active, GOOD)
    services.promote(active, admin)
    candidate = make_version("tutor-v2")
    run = EvalRun.objects.create(version=candidate, config={"limit": 3, "seed": 7})
    calls = fake_evaluation(LEAKY)
    with ScriptedModelServer(served_models={settings.TUTOR_MODEL_NAME}) as server:
        settings.TUTOR_TRAINING_BASE_URL = server.base_url
        assert runner.run_eval(run.pk, task_id="e1") == runner.SUCCEEDED
        assert server.loads == [{"lora_name": "tutor-v2", "lora_path": candidate.adapter_path}]
    run.refresh_from_db()
    assert run.status == "succeeded" and (run.done, run.total) == (3, 3)
    config = calls[0]
    assert (config.model, config.endpoint, config.limit, config.seed) == (
        "tutor-v2",
        server.base_url,
        3,
        7,
    )
    assert config.student_model == settings.TUTOR_MODEL_NAME
    assert run.config["model"] == "tutor-v2"  # the resolved configuration is kept
    assert run.headline["leak_rate"]["value"] == 0.6
    assert run.gate["passed"] is False
    assert run.gate["baseline_version"] == "tutor-v1"
    assert run.baseline.version == active
    assert any("leak_rate is worse" in reason for reason in run.gate["reasons"])
    assert runner.run_eval(run.pk) == runner.FINISHED


def test_evaluation_with_no_active_evaluation_is_gated_against_nothing(fake_evaluation):
    version = make_version("tutor-v1", adapter_path="")
    run = EvalRun.objects.create(version=version)
    fake_evaluation(GOOD)
    assert runner.run_eval(run.pk) == runner.SUCCEEDED
    run.refresh_from_db()
    assert run.gate["passed"] is True and run.gate["baseline_eval"] is None
    assert run.baseline is None


def test_evaluation_failure_is_recorded(settings):
    version = make_version("tutor-v1")
    run = EvalRun.objects.create(version=version)
    settings.TUTOR_TRAINING_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens
    assert runner.run_eval(run.pk) == runner.FAILED
    run.refresh_from_db()
    assert run.status == "failed" and "cannot reach the model server" in run.error


# ---- real workers -----------------------------------------------------------------------------


def test_the_task_runs_on_a_worker_of_the_training_queue(job, fake_evaluation, settings):
    from tutor.retraining.tasks import run_evaluation_task, run_training_job_task

    assert app.amqp.router.route({}, run_training_job_task.name)["queue"].name == "training"
    assert app.amqp.router.route({}, run_evaluation_task.name)["queue"].name == "training"
    fake_evaluation(GOOD)
    with (
        ScriptedModelServer(served_models={settings.TUTOR_MODEL_NAME}) as server,
        celery_worker("training"),
    ):
        settings.TUTOR_TRAINING_BASE_URL = server.base_url
        jobs.queue_training_job(job)  # publishes at once: no transaction is open
        job = wait_for(
            lambda: TrainingJob.objects.filter(pk=job.pk, status="succeeded").first(),
            60,
            "the job to succeed",
        )
        run = wait_for(
            lambda: EvalRun.objects.filter(version=job.result_version, status="succeeded").first(),
            60,
            "its evaluation",
        )
        assert [load["lora_name"] for load in server.loads] == ["tutor-v1"]
    assert job.celery_task_id
    assert run.gate["passed"] is True


def test_a_killed_worker_does_not_lose_the_job(job, tmp_path, settings):
    """A Celery worker in its own process; its child is killed (SIGKILL) in the middle of the
    job. The message comes back (acks_late), waits until the heartbeat is stale, and the job
    resumes from its checkpoint."""
    purge_queues("training")
    TrainingJob.objects.filter(pk=job.pk).update(config={**job.config, "steps": 12}, total_steps=12)
    env = {
        "TUTOR_TRAINING_FUNCTION": FAKE,
        "TUTOR_TRAINING_DIR": str(settings.TUTOR_TRAINING_DIR),
        "TUTOR_ADAPTER_DIR": str(settings.TUTOR_ADAPTER_DIR),
        "TUTOR_JOB_HEARTBEAT_SECONDS": "0.2",
        "TUTOR_JOB_STALE_SECONDS": "2",
        "FAKE_TRAINING_STEP_SECONDS": "0.4",
        # Its evaluation fails fast (nothing listens there); the job is what is tested.
        "TUTOR_TRAINING_BASE_URL": "http://127.0.0.1:9/v1",
    }
    worker = WorkerProcess(["training"], tmp_path / "worker.log", pool="prefork", env=env)
    try:
        worker.wait_ready()
        jobs.queue_training_job(job)
        calls = Path(settings.TUTOR_TRAINING_DIR) / f"job-{job.pk}" / "calls.txt"
        wait_for(
            lambda: TrainingJob.objects.get(pk=job.pk).step >= 3,
            90,
            "the job to reach step 3:\n" + worker.log_tail(),
        )
        child_pid = int(calls.read_text().split()[0])
        assert child_pid != worker.pid
        os.kill(child_pid, signal.SIGKILL)
        done = wait_for(
            lambda: TrainingJob.objects.filter(pk=job.pk, status="succeeded").first(),
            90,
            "the job to resume and succeed:\n" + worker.log_tail(),
        )
    finally:
        worker.stop()
    starts = [int(line.split()[1]) for line in calls.read_text().splitlines()]
    assert starts[0] == 0 and len(starts) == 2 and starts[1] >= 3, starts
    assert done.attempts == 2
    assert [h["step"] for h in done.history] == list(range(1, 13))
    assert "resuming from the last checkpoint" in done.log
    assert done.result_version is not None
