"""What the retraining tasks do, as plain functions the thin Celery tasks call.

A training job runs ``training.grpo.train`` (``TUTOR_TRAINING_FUNCTION``) in the
worker's thread; what it reports is written by :mod:`tutor.retraining.reporting`. This module
decides what a delivery does and when a row changes state; the changes themselves are
:mod:`tutor.retraining.jobs` (jobs and evaluation runs) and :mod:`tutor.retraining.services`
(the version a job registers).

Delivery rules (the tasks are ``acks_late``: a killed worker's message is delivered again):

- a finished job is left alone (a duplicate delivery);
- a running job whose heartbeat is fresh belongs to a live worker: the task retries later, so a
  copy of it keeps watching the job until it ends;
- a running job whose heartbeat is stale lost its worker: this delivery resumes it (the trainer
  resumes from the last checkpoint in the same ``workdir``);
- a cancel requested while queued ends the job before it starts.

Failures say why, on the row the admin looks at (``error``, and the job's log). A failure of
the infrastructure that may pass (the model server unreachable, timing out, answering 5xx,
not serving the adapter; see :func:`is_transient`) puts the row back in the queue with the
reason and when it is tried again, and the task retries with a growing countdown
(``TUTOR_INFRA_RETRY_SECONDS``, doubled each time) at most ``TUTOR_INFRA_RETRIES`` times; then
it fails. An evaluation whose tasks lost more than ``TUTOR_EVAL_MAX_INFRA_FAILURES`` of their
items to the infrastructure, or measured none, fails rather than succeed with empty figures
(``training.evaluation.EvaluationIncomplete``), and the training job it followed fails with it.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from inference.adapters import ServerUnreachable
from inference.client import ModelServerError
from training import evaluation
from training.dataset import problem_to_dict
from training.jobs import JobCancelled, TrainJobConfig
from training.rollout import TRANSIENT_KINDS, InfrastructureFailure, failure_kind
from tutor.reviews.services import judge_options, judge_teacher_agreement

from . import export, jobs, services
from .models import EvalRun, TrainingJob
from .reporting import EvalReporter, JobReporter

logger = logging.getLogger(__name__)


class RunState(StrEnum):
    """What a delivery of a job or evaluation found or did.

    The ``claim_*`` functions return ``START`` or ``RESUME`` (go on) or one of the others (stop
    here); ``run_training`` and ``run_eval`` return any but ``START`` and ``RESUME``, which is
    what their Celery tasks return too."""

    MISSING = "missing"
    FINISHED = "finished"
    BUSY = "busy"
    START = "start"
    RESUME = "resume"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRY = "retry"  # a transient failure: the task retries after infra_retry_delay()


# The outcomes by their own names, as the tasks and tests compare them.
MISSING = RunState.MISSING
FINISHED = RunState.FINISHED
BUSY = RunState.BUSY
SUCCEEDED = RunState.SUCCEEDED
FAILED = RunState.FAILED
CANCELLED = RunState.CANCELLED
RETRY = RunState.RETRY

MAX_INFRA_RETRY_SECONDS = 3600.0


def infra_retries() -> int:
    """How many times a task retries after a transient infrastructure failure."""
    return max(0, settings.TUTOR_INFRA_RETRIES)


def infra_retry_delay(attempt: int) -> float:
    """Seconds before retry ``attempt + 1``: doubled each time, capped."""
    base = settings.TUTOR_INFRA_RETRY_SECONDS
    return min(base * 2 ** max(0, attempt), MAX_INFRA_RETRY_SECONDS)


def retry_note(reason: str, attempt: int, retries: int) -> str:
    """Why a row went back to the queue, and when it runs again."""
    delay = infra_retry_delay(attempt)
    return f"{reason}; retrying in {delay:g} s (retry {attempt + 1} of {retries})"


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the infrastructure that may pass by itself: the model
    server unreachable, timing out, answering 5xx or not serving the model (yet). A wrong API
    key, a bad adapter, a bug or missing data are not."""
    if isinstance(exc, InfrastructureFailure):
        return exc.transient
    if isinstance(exc, ServerUnreachable):
        return True
    if isinstance(exc, (ModelServerError, httpx.TransportError, ConnectionError, TimeoutError)):
        return failure_kind(exc) in TRANSIENT_KINDS
    return False


def describe(exc: BaseException) -> str:
    """The reason shown to the admin."""
    text = str(exc)
    if isinstance(exc, InfrastructureFailure):
        return text[:2000]
    return f"{type(exc).__name__}: {text}"[:2000]


# ---- training jobs ----------------------------------------------------------------------------


def claim_training_job(job_id: int, task_id: str | None) -> tuple[RunState, TrainingJob | None]:
    """Decide what this delivery does with the job (see the module's docstring)."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return MISSING, None
        if job.is_finished:
            return FINISHED, job
        resuming = job.status == TrainingJob.Status.RUNNING
        if resuming and not jobs.heartbeat_stale(job.heartbeat_at):
            return BUSY, job
        now = timezone.now()
        if job.cancel_requested:
            job.status = TrainingJob.Status.CANCELLED
            job.finished_at = now
            job.save(update_fields=["status", "finished_at"])
            return CANCELLED, job
        job.status = TrainingJob.Status.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.attempts += 1
        job.error = ""  # a retry after a transient failure: the reason is in the log
        if task_id:
            job.celery_task_id = task_id
        if not job.workdir:
            job.workdir = str(Path(settings.TUTOR_TRAINING_DIR) / f"job-{job.pk}")
        job.save(
            update_fields=[
                "status",
                "started_at",
                "heartbeat_at",
                "attempts",
                "error",
                "celery_task_id",
                "workdir",
            ]
        )
        return (RunState.RESUME if resuming else RunState.START), job


def prepare_dataset(job: TrainingJob) -> str:
    """Export the window once; a resumed job reuses the file it trained on."""
    path = Path(job.dataset_path or Path(job.workdir) / "dataset.jsonl")
    if path.exists():
        return str(path)
    stats = export.export_job_dataset(job, path)
    TrainingJob.objects.filter(pk=job.pk).update(dataset_path=str(path), dataset_stats=stats)
    jobs.append_log(
        job.pk,
        f"exported {stats['problems']} problems ({stats['problems_from_bank']} from the bank), "
        f"{stats['ratings']} ratings, {stats['outcomes']} outcomes from {stats['sessions']} "
        "sessions",
    )
    return str(path)


def run_training(
    job_id: int, task_id: str | None = None, *, attempt: int = 0, retries: int = 0
) -> RunState:
    """Run (or resume) one job to its end; returns what happened.

    ``attempt`` counts the retries after transient failures so far, ``retries`` how many are
    allowed (the Celery task passes them; a direct call fails at once)."""
    state, job = claim_training_job(job_id, task_id)
    if state in (MISSING, FINISHED, CANCELLED, BUSY):
        if state == BUSY:
            logger.info("job %s is running on a live worker; checking back later", job_id)
        return state
    assert job is not None
    if state == RunState.RESUME:
        jobs.append_log(
            job.pk,
            f"the previous worker stopped answering; resuming from the last checkpoint "
            f"(delivery {job.attempts})",
        )
    else:
        jobs.append_log(job.pk, f"started (task {task_id or '-'}, delivery {job.attempts})")
    reporter = JobReporter(job.pk)
    try:
        with reporter.writer:  # heartbeats from here on
            Path(job.workdir).mkdir(parents=True, exist_ok=True)
            dataset_path = prepare_dataset(job)
            config = replace(
                TrainJobConfig.from_dict(job.config), api_key=settings.TUTOR_MODEL_API_KEY
            )
            if settings.TUTOR_TRAINING_JUDGE and config.judge is None:
                # The LLM judge as the reward's style judge (its key is never stored on the job).
                config = replace(config, judge=judge_options())
            train = import_string(settings.TUTOR_TRAINING_FUNCTION)
            result = train(
                config,
                dataset_path,
                job.workdir,
                on_progress=reporter.on_progress,
                should_stop=reporter.should_stop,
                log=reporter.log,
            )
        job.refresh_from_db()
        version = services.register_version(job, result)
    except JobCancelled:
        jobs.append_log(job_id, "cancelled; the last checkpoint is kept in the job's folder")
        jobs.finish_job(job_id, TrainingJob.Status.CANCELLED)
        return CANCELLED
    except Exception as exc:
        reason = describe(exc)
        if is_transient(exc) and attempt < retries:
            logger.warning("training job %s: %s; retrying", job_id, reason)
            jobs.requeue_job(job_id, retry_note(reason, attempt, retries))
            return RETRY
        logger.exception("training job %s failed", job_id)
        jobs.append_log(job_id, "failed:\n" + "".join(traceback.format_exc(limit=8)))
        if attempt:
            reason = f"{reason} (gave up after {attempt} retries)"[:2000]
        jobs.finish_job(job_id, TrainingJob.Status.FAILED, error=reason)
        return FAILED
    jobs.finish_job(
        job_id,
        TrainingJob.Status.SUCCEEDED,
        result_version=version,
        step=max(job.step, int(result.steps_done)),
        error="",
    )
    jobs.append_log(job_id, f"done: registered {version.name}; evaluation queued")
    jobs.start_evaluation(version, job.created_by, training_job=job)
    return SUCCEEDED


# ---- evaluations ------------------------------------------------------------------------------


def claim_eval_run(run_id: int, task_id: str | None) -> tuple[RunState, EvalRun | None]:
    with transaction.atomic():
        run = EvalRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return MISSING, None
        if run.is_finished:
            return FINISHED, run
        if run.status == EvalRun.Status.RUNNING and not jobs.heartbeat_stale(run.heartbeat_at):
            return BUSY, run
        run.status = EvalRun.Status.RUNNING
        run.started_at = timezone.now()
        run.heartbeat_at = run.started_at
        run.done = 0
        run.error = ""  # a retry after a transient failure runs again
        if task_id:
            run.celery_task_id = task_id
        run.save(
            update_fields=[
                "status",
                "started_at",
                "heartbeat_at",
                "done",
                "error",
                "celery_task_id",
            ]
        )
        return RunState.START, run


def evaluation_config(run: EvalRun) -> dict[str, Any]:
    """The run's EvaluationConfig as a dict: its options plus where and what to evaluate."""
    endpoint = settings.TUTOR_TRAINING_BASE_URL
    config = dict(run.config or {})
    config.update(endpoint=endpoint, model=run.version.name, api_key=settings.TUTOR_MODEL_API_KEY)
    config.setdefault("student_model", services.base_version().name)
    config.setdefault(
        "max_infra_failure_rate",
        settings.TUTOR_EVAL_MAX_INFRA_FAILURES,
    )
    config.setdefault(
        "extra_problems", [problem_to_dict(p) for p in export.heldout_bank_problems()]
    )
    config["judge"] = judge_options()  # the LLM judge: TUTOR_JUDGE_* settings
    # Dialogues kept in the report, so the version page shows them beside another version's.
    config.setdefault("transcripts", True)
    return config


def run_eval(
    run_id: int, task_id: str | None = None, *, attempt: int = 0, retries: int = 0
) -> RunState:
    """Evaluate a version and store the report, headline and gate verdict.

    ``attempt`` and ``retries`` as for :func:`run_training`: a transient failure with retries
    left returns :data:`RETRY` with the run queued again and the reason on it."""
    state, run = claim_eval_run(run_id, task_id)
    if state in (MISSING, FINISHED, BUSY):
        return state
    assert run is not None
    version = run.version
    reporter = EvalReporter(run.pk)
    try:
        config = evaluation.EvaluationConfig.from_dict(evaluation_config(run))
        services.load_version_adapter(version, config.endpoint)
        EvalRun.objects.filter(pk=run.pk).update(config=config.to_dict())
        with reporter.writer:
            report = evaluation.run_evaluation(config, progress=reporter.progress)
        if config.judge is not None:  # the LLM judge against teachers, on this version's turns
            report["judge_agreement"] = judge_teacher_agreement(version.messages.all())
        run.report = jobs.json_safe(report)
        baseline = services.latest_eval(services.serving_version(None), exclude=run.pk)
        gate = services.gate_verdict(run, baseline)
        jobs.succeed_eval(run, evaluation.headline(run.report), gate, baseline)
    except Exception as exc:
        reason = describe(exc)
        if is_transient(exc) and attempt < retries:
            logger.warning("evaluation %s: %s; retrying", run_id, reason)
            jobs.requeue_eval(run, retry_note(reason, attempt, retries))
            return RETRY
        logger.exception("evaluation %s failed", run_id)
        if attempt:
            reason = f"{reason} (gave up after {attempt} retries)"
        jobs.fail_eval(run, reason, getattr(exc, "report", None))
        return FAILED
    return SUCCEEDED
