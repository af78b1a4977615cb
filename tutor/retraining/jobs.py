"""Training jobs and evaluation runs: the changes of their rows' state, as plain functions.

From the pages: create a job, cancel it, resume it, start an evaluation. From the worker
(:mod:`tutor.retraining.runner`, which decides when): fold in progress and log lines, finish,
requeue after a transient failure, fail. Rows only ever get JSON-safe values
(:func:`json_safe`: PostgreSQL's jsonb refuses NaN and infinities).

Work is queued after the commit, by task name (:func:`publish_task`): the task modules import
the runner, which imports this module, so this module never imports them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.jobs import Progress
from tutor.classes.models import Classroom

from .models import EvalRun, ModelVersion, TrainingJob

logger = logging.getLogger(__name__)

LOG_CAP = 200_000  # characters of log kept per job (the newest)
HISTORY_CAP = 20_000  # per-step entries kept per job

TRAINING_TASK = "tutor.retraining.tasks.run_training_job_task"
EVALUATION_TASK = "tutor.retraining.tasks.run_evaluation_task"


def heartbeat_stale(heartbeat_at: dt.datetime | None) -> bool:
    """Whether a worker that last beat at ``heartbeat_at`` is gone (``TUTOR_JOB_STALE_SECONDS``
    without a heartbeat, or none ever)."""
    if heartbeat_at is None:
        return True
    return (timezone.now() - heartbeat_at).total_seconds() > settings.TUTOR_JOB_STALE_SECONDS


# ---- values for the rows ----------------------------------------------------------------------


def clean_metrics(metrics: dict[str, Any] | None) -> dict[str, float | None]:
    """Numbers only, JSON-safe (NaN and infinities become None)."""
    clean: dict[str, float | None] = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, bool):
            value = float(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        clean[str(key)] = number if math.isfinite(number) else None
    return clean


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (PostgreSQL's jsonb refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def capped_log(log: str, text: str) -> str:
    """``log`` with ``text`` appended, keeping the newest ``LOG_CAP`` characters (whole
    lines)."""
    log = log + text
    if len(log) > LOG_CAP:
        cut = log.find("\n", len(log) - LOG_CAP)
        log = "[… earlier lines dropped]\n" + log[cut + 1 if cut >= 0 else len(log) - LOG_CAP :]
    return log


def stamped(line: str) -> str:
    """One log line, with the local time in front."""
    line = line.rstrip("\n")
    return f"{timezone.localtime().strftime('%H:%M:%S')} {line}\n"


def append_log(job_id: int, text: str) -> None:
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is not None:
            job.log = capped_log(job.log, stamped(text))
            job.save(update_fields=["log"])


def apply_progress(job: TrainingJob, progress: Progress) -> set[str]:
    """Fold one progress report into the row; returns the fields it changed."""
    if progress.stage:
        stages = dict(job.stages or {})
        stages[str(progress.stage)[:64]] = json_safe(progress.stage_report or {})
        job.stages = stages
        fields = {"stages"}
        if progress.message:
            job.log = capped_log(job.log, stamped(progress.message))
            fields.add("log")
        return fields
    job.step = max(0, int(progress.step))
    job.total_steps = max(0, int(progress.total_steps))
    fields = {"step", "total_steps"}
    metrics = clean_metrics(progress.metrics)
    history = [h for h in (job.history or []) if isinstance(h, dict)]
    if metrics:
        # A resumed job redoes the steps after its checkpoint: their old entries go.
        history = [h for h in history if h.get("step", -1) < job.step]
        history.append({**metrics, "step": job.step})
        job.metrics = metrics
        fields.add("metrics")
    else:
        history = [h for h in history if h.get("step", -1) <= job.step]
    job.history = history[-HISTORY_CAP:]
    fields.add("history")
    if progress.checkpoint:
        job.checkpoint_path = str(progress.checkpoint)
        fields.add("checkpoint_path")
    if progress.message:
        job.log = capped_log(job.log, stamped(progress.message))
        fields.add("log")
    return fields


# ---- the worker's transitions -----------------------------------------------------------------


def finish_job(job_id: int, status: TrainingJob.Status, **fields: Any) -> None:
    TrainingJob.objects.filter(pk=job_id).update(
        status=status, finished_at=timezone.now(), **fields
    )


def requeue_job(job_id: int, note: str) -> None:
    """Back to the queue after a transient failure; ``note`` says why and when it runs
    again."""
    append_log(job_id, note)
    TrainingJob.objects.filter(pk=job_id).update(
        status=TrainingJob.Status.QUEUED, error=note[:2000], heartbeat_at=None
    )


def requeue_eval(run: EvalRun, note: str) -> None:
    """As :func:`requeue_job`, for an evaluation run (noted in the log of its job, if any)."""
    EvalRun.objects.filter(pk=run.pk).update(
        status=EvalRun.Status.QUEUED, error=note[:2000], heartbeat_at=None
    )
    if run.training_job_id:
        append_log(run.training_job_id, f"evaluation #{run.pk} of {run.version.name}: {note}")


def succeed_eval(
    run: EvalRun, headline: dict[str, Any], gate: dict[str, Any], baseline: EvalRun | None
) -> None:
    """Store a finished evaluation: ``run.report``, its headline, and the gate's verdict
    against ``baseline`` (the evaluation of what served globally when it finished)."""
    EvalRun.objects.filter(pk=run.pk).update(
        status=EvalRun.Status.SUCCEEDED,
        report=json_safe(run.report),
        headline=json_safe(headline),
        gate=json_safe(gate),
        baseline=baseline,
        finished_at=timezone.now(),
        error="",
    )


def fail_eval(run: EvalRun, reason: str, report: dict[str, Any] | None) -> None:
    """The run failed; so did the training job it followed, if any (its version stays a
    candidate that can be evaluated again from its page)."""
    fields: dict[str, Any] = {
        "status": EvalRun.Status.FAILED,
        "error": reason[:2000],
        "finished_at": timezone.now(),
    }
    if report is not None:  # as far as it went: which items failed, and why
        fields["report"] = json_safe(report)
    EvalRun.objects.filter(pk=run.pk).update(**fields)
    if run.training_job_id:
        note = f"the evaluation of {run.version.name} after training failed: {reason}"
        append_log(run.training_job_id, note)
        finish_job(run.training_job_id, TrainingJob.Status.FAILED, error=note[:2000])


# ---- the pages' commands ----------------------------------------------------------------------


def create_training_job(
    user: Any,
    *,
    base_version: ModelVersion,
    config: dict[str, Any],
    classrooms: Iterable[Classroom],
    date_from: dt.date | None,
    date_to: dt.date | None,
    include_problem_bank: bool,
    total_steps: int,
) -> TrainingJob:
    """Create a job on a data window and queue it (after the commit)."""
    with transaction.atomic():
        job = TrainingJob.objects.create(
            created_by=user,
            base_version=base_version,
            config=config,
            date_from=date_from,
            date_to=date_to,
            include_problem_bank=include_problem_bank,
            total_steps=total_steps,
        )
        job.classrooms.set(classrooms)
        queue_training_job(job)
    return job


def request_cancel(job: TrainingJob) -> TrainingJob:
    """Ask a job to stop. A queued job (or one whose worker is gone) ends at once; a running
    job stops at its next check (the trainer calls ``should_stop`` every step)."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        job.cancel_requested = True
        fields = ["cancel_requested"]
        if job.status == TrainingJob.Status.QUEUED or heartbeat_stale(job.heartbeat_at):
            job.status = TrainingJob.Status.CANCELLED
            job.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        job.save(update_fields=fields)
    return job


def resume_job(job: TrainingJob) -> bool:
    """Queue a failed job again, or a running one whose worker stopped answering: it resumes
    from its last checkpoint. False (nothing changes) for any other job."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        lost = job.status == TrainingJob.Status.RUNNING and heartbeat_stale(job.heartbeat_at)
        if job.status != TrainingJob.Status.FAILED and not lost:
            return False
        if job.status == TrainingJob.Status.FAILED:
            job.status = TrainingJob.Status.QUEUED
            job.error = ""
            job.finished_at = None
            job.save(update_fields=["status", "error", "finished_at"])
        queue_training_job(job)
    return True


def default_eval_config(**overrides: Any) -> dict[str, Any]:
    """EvaluationConfig fields the platform sets (endpoints and model names are added when the
    run starts)."""
    config: dict[str, Any] = {"limit": settings.TUTOR_EVAL_LIMIT}
    if settings.TUTOR_EVAL_REWARD_MODEL:
        config["reward_model"] = settings.TUTOR_EVAL_REWARD_MODEL
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


def start_evaluation(
    version: ModelVersion,
    user: Any = None,
    *,
    training_job: TrainingJob | None = None,
    **config: Any,
) -> EvalRun:
    """Create an evaluation run of ``version`` and queue it (after the commit). With
    ``training_job`` it is that job's post-training evaluation: its failure fails the job."""
    run = EvalRun.objects.create(
        version=version,
        created_by=user,
        config=default_eval_config(**config),
        training_job=training_job,
    )
    _queue_on_commit(EVALUATION_TASK, run, "evaluation")
    return run


# ---- queueing ---------------------------------------------------------------------------------


def publish_task(name: str, *args: Any) -> Any:
    """Send a Celery task by name (routed by ``CELERY_TASK_ROUTES``)."""
    return current_app.send_task(name, args=list(args))


def queue_training_job(job: TrainingJob) -> None:
    """Queue the job's task (after the commit)."""
    _queue_on_commit(TRAINING_TASK, job, "job")


def _queue_on_commit(task: str, row: TrainingJob | EvalRun, what: str) -> None:
    """Publish the task named ``task`` for ``row.pk`` once the row is committed; record its
    id. A broker outage fails the row with the reason instead of leaving it queued forever
    (and the training job whose evaluation it was)."""
    model = type(row)

    def publish() -> None:
        try:
            result = publish_task(task, row.pk)
        except Exception as exc:
            logger.exception("could not queue %s %s", what, row.pk)
            error = f"could not queue the {what} (is the broker up?): {exc}"
            model.objects.filter(pk=row.pk).update(
                status=model.Status.FAILED, error=error, finished_at=timezone.now()
            )
            if isinstance(row, EvalRun) and row.training_job_id is not None:
                finish_job(
                    row.training_job_id,
                    TrainingJob.Status.FAILED,
                    error=f"the evaluation after training failed: {error}",
                )
            return
        model.objects.filter(pk=row.pk).update(celery_task_id=result.id or "")

    transaction.on_commit(publish)
