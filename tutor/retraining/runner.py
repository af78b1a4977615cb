"""What the retraining tasks do, as plain functions the thin Celery tasks call.

A training job runs ``training.grpo.train`` (``TUTOR_TRAINING_FUNCTION``) in the
worker's thread. Everything it reports (progress, log lines) and the heartbeat are written by a
thread of its own (:class:`BackgroundWriter`), so the trainer never waits on the database and
the job row is written by one thread whatever thread the trainer reports from (evaluation
reports from inside an event loop, where Django refuses database calls).

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
import math
import queue
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.db import IntegrityError, close_old_connections, connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from inference.adapters import ServerUnreachable
from inference.client import ModelServerError
from training.dataset import problem_to_dict
from training.jobs import JobCancelled, Progress, TrainJobConfig
from training.rollout import TRANSIENT_KINDS, InfrastructureFailure, failure_kind
from tutor.reviews.services import judge_options, judge_teacher_agreement

from . import export, services
from .export import export_job_dataset
from .models import EvalRun, ModelVersion, TrainingJob

logger = logging.getLogger(__name__)

LOG_CAP = 200_000  # characters of log kept per job (the newest)
HISTORY_CAP = 20_000  # per-step entries kept per job


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


def _now():
    return timezone.now()


def _stale(heartbeat_at) -> bool:
    if heartbeat_at is None:
        return True
    return (_now() - heartbeat_at).total_seconds() > settings.TUTOR_JOB_STALE_SECONDS


def infra_retries() -> int:
    """How many times a task retries after a transient infrastructure failure."""
    return max(0, settings.TUTOR_INFRA_RETRIES)


def infra_retry_delay(attempt: int) -> float:
    """Seconds before retry ``attempt + 1``: doubled each time, capped."""
    base = settings.TUTOR_INFRA_RETRY_SECONDS
    return min(base * 2 ** max(0, attempt), MAX_INFRA_RETRY_SECONDS)


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


def _append_log(log: str, text: str) -> str:
    log = log + text
    if len(log) > LOG_CAP:
        cut = log.find("\n", len(log) - LOG_CAP)
        log = "[… earlier lines dropped]\n" + log[cut + 1 if cut >= 0 else len(log) - LOG_CAP :]
    return log


def _stamp(line: str) -> str:
    line = line.rstrip("\n")
    return f"{timezone.localtime().strftime('%H:%M:%S')} {line}\n"


class BackgroundWriter:
    """A thread that writes a long call's reports to the database: ``flush(items)`` for what
    was queued since the last round, ``poll()`` every ``interval`` seconds (heartbeats,
    cancel checks). Use as a context manager; leaving it writes what is left."""

    def __init__(
        self,
        flush: Callable[[list[Any]], None],
        poll: Callable[[], None],
        *,
        interval: float = 1.0,
        name: str = "retraining-writer",
    ) -> None:
        self._flush = flush
        self._poll = poll
        self.interval = interval
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def _drain(self) -> list[Any]:
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _run(self) -> None:
        try:
            while True:
                stopping = self._stopping.is_set()
                items = self._drain()
                try:
                    if items:
                        self._flush(items)
                    self._poll()
                except Exception:  # a failed write must not end the job's reporting
                    logger.exception("could not write a job's progress")
                    close_old_connections()
                if stopping:
                    return
                self._stopping.wait(self.interval)
        finally:
            connections.close_all()  # this thread's connections

    def __enter__(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._thread.join()


# ---- training jobs ----------------------------------------------------------------------------


class JobReporter:
    """The callbacks handed to ``training.grpo.train``; thread-safe, never touch the database."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.cancelled = threading.Event()
        self._last_beat = 0.0
        interval = min(1.0, settings.TUTOR_JOB_HEARTBEAT_SECONDS)
        self.writer = BackgroundWriter(self._flush, self._poll, interval=interval)

    # called by the trainer
    def on_progress(self, progress: Progress) -> None:
        self.writer.put(("progress", progress))

    def log(self, text: str) -> None:
        logger.info("job %s: %s", self.job_id, text)
        self.writer.put(("log", str(text)))

    def should_stop(self) -> bool:
        return self.cancelled.is_set()

    # the writer thread
    def _poll(self) -> None:
        row = TrainingJob.objects.filter(pk=self.job_id).values_list("cancel_requested", flat=True)
        requested = row.first()
        if requested is None or requested:
            self.cancelled.set()
        if time.monotonic() - self._last_beat >= settings.TUTOR_JOB_HEARTBEAT_SECONDS:
            TrainingJob.objects.filter(pk=self.job_id).update(heartbeat_at=_now())
            self._last_beat = time.monotonic()

    def _flush(self, items: list[Any]) -> None:
        with transaction.atomic():
            job = TrainingJob.objects.select_for_update().filter(pk=self.job_id).first()
            if job is None:
                return
            fields = {"heartbeat_at"}
            for kind, payload in items:
                if kind == "log":
                    job.log = _append_log(job.log, _stamp(payload))
                    fields.add("log")
                elif kind == "progress":
                    fields |= apply_progress(job, payload)
            job.heartbeat_at = _now()
            job.save(update_fields=sorted(fields))
        self._last_beat = time.monotonic()


def apply_progress(job: TrainingJob, progress: Progress) -> set[str]:
    """Fold one progress report into the row; returns the fields it changed."""
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
        job.log = _append_log(job.log, _stamp(progress.message))
        fields.add("log")
    return fields


def append_log(job_id: int, text: str) -> None:
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is not None:
            job.log = _append_log(job.log, _stamp(text))
            job.save(update_fields=["log"])


def claim_training_job(job_id: int, task_id: str | None) -> tuple[RunState, TrainingJob | None]:
    """Decide what this delivery does with the job (see the module's docstring)."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            return MISSING, None
        if job.is_finished:
            return FINISHED, job
        resuming = job.status == TrainingJob.Status.RUNNING
        if resuming and not _stale(job.heartbeat_at):
            return BUSY, job
        now = _now()
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


def _finish(job_id: int, status: TrainingJob.Status, **fields: Any) -> None:
    TrainingJob.objects.filter(pk=job_id).update(status=status, finished_at=_now(), **fields)


def prepare_dataset(job: TrainingJob) -> str:
    """Export the window once; a resumed job reuses the file it trained on."""
    path = Path(job.dataset_path or Path(job.workdir) / "dataset.jsonl")
    if path.exists():
        return str(path)
    stats = export_job_dataset(job, path)
    TrainingJob.objects.filter(pk=job.pk).update(dataset_path=str(path), dataset_stats=stats)
    append_log(
        job.pk,
        f"exported {stats['problems']} problems ({stats['problems_from_bank']} from the bank), "
        f"{stats['ratings']} ratings, {stats['outcomes']} outcomes from {stats['sessions']} "
        "sessions",
    )
    return str(path)


def _requeue_job(job_id: int, reason: str, attempt: int, retries: int) -> None:
    """Back to the queue after a transient failure, saying why and when it runs again."""
    delay = infra_retry_delay(attempt)
    note = f"{reason}; retrying in {delay:g} s (retry {attempt + 1} of {retries})"
    append_log(job_id, note)
    TrainingJob.objects.filter(pk=job_id).update(
        status=TrainingJob.Status.QUEUED, error=note[:2000], heartbeat_at=None
    )


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
        append_log(
            job.pk,
            f"the previous worker stopped answering; resuming from the last checkpoint "
            f"(delivery {job.attempts})",
        )
    else:
        append_log(job.pk, f"started (task {task_id or '-'}, delivery {job.attempts})")
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
        version = register_version(job, result)
    except JobCancelled:
        append_log(job_id, "cancelled; the last checkpoint is kept in the job's folder")
        _finish(job_id, TrainingJob.Status.CANCELLED)
        return CANCELLED
    except Exception as exc:
        reason = describe(exc)
        if is_transient(exc) and attempt < retries:
            logger.warning("training job %s: %s; retrying", job_id, reason)
            _requeue_job(job_id, reason, attempt, retries)
            return RETRY
        logger.exception("training job %s failed", job_id)
        append_log(job_id, "failed:\n" + "".join(traceback.format_exc(limit=8)))
        if attempt:
            reason = f"{reason} (gave up after {attempt} retries)"[:2000]
        _finish(job_id, TrainingJob.Status.FAILED, error=reason)
        return FAILED
    _finish(
        job_id,
        TrainingJob.Status.SUCCEEDED,
        result_version=version,
        step=max(job.step, int(result.steps_done)),
        error="",
    )
    append_log(job_id, f"done: registered {version.name}; evaluation queued")
    services.start_evaluation(version, job.created_by, training_job=job)
    return SUCCEEDED


def register_version(job: TrainingJob, result) -> ModelVersion:
    """The job's adapter as a candidate version (once: a redelivered job finds it)."""
    existing = ModelVersion.objects.filter(training_job=job).first()
    if existing is not None:
        return existing
    base = job.base_version
    for _ in range(20):
        name = services.next_version_name()
        target = Path(services.check_adapter_path(name))  # inside TUTOR_ADAPTER_DIR
        try:
            with transaction.atomic():
                version = ModelVersion.objects.create(
                    name=name,
                    base_model=base.base_model,
                    adapter_path=str(target),
                    parent=base,
                    status=ModelVersion.Status.CANDIDATE,
                    metrics=clean_metrics(result.metrics),
                    training_job=job,
                    notes=f"trained by job {job.pk} from {base.name}",
                )
        except IntegrityError:  # the name was taken meanwhile
            continue
        try:
            shutil.copytree(result.adapter_dir, target, dirs_exist_ok=True)
        except Exception:
            version.delete()
            raise
        return version
    raise RuntimeError("could not find a free version name")


# ---- evaluations ------------------------------------------------------------------------------


class EvalReporter:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.writer = BackgroundWriter(self._flush, self._poll, interval=1.0)
        self._last_beat = 0.0

    def progress(self, done: int, total: int, task: str) -> None:
        self.writer.put((done, total, task))

    def _poll(self) -> None:
        if time.monotonic() - self._last_beat >= settings.TUTOR_JOB_HEARTBEAT_SECONDS:
            EvalRun.objects.filter(pk=self.run_id).update(heartbeat_at=_now())
            self._last_beat = time.monotonic()

    def _flush(self, items: list[Any]) -> None:
        done, total, task = items[-1]
        EvalRun.objects.filter(pk=self.run_id).update(
            done=max(0, int(done)),
            total=max(0, int(total)),
            current_task=str(task)[:64],
            heartbeat_at=_now(),
        )
        self._last_beat = time.monotonic()


def claim_eval_run(run_id: int, task_id: str | None) -> tuple[RunState, EvalRun | None]:
    with transaction.atomic():
        run = EvalRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return MISSING, None
        if run.is_finished:
            return FINISHED, run
        if run.status == EvalRun.Status.RUNNING and not _stale(run.heartbeat_at):
            return BUSY, run
        run.status = EvalRun.Status.RUNNING
        run.started_at = _now()
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
    return config


def _requeue_eval(run: EvalRun, reason: str, attempt: int, retries: int) -> None:
    """Back to the queue after a transient failure, saying why and when it runs again."""
    delay = infra_retry_delay(attempt)
    note = f"{reason}; retrying in {delay:g} s (retry {attempt + 1} of {retries})"
    EvalRun.objects.filter(pk=run.pk).update(
        status=EvalRun.Status.QUEUED, error=note[:2000], heartbeat_at=None
    )
    if run.training_job_id:
        append_log(run.training_job_id, f"evaluation #{run.pk} of {run.version.name}: {note}")


def _fail_eval(run: EvalRun, reason: str, report: dict[str, Any] | None) -> None:
    """The run failed; so did the training job it followed, if any (its version stays a
    candidate that can be evaluated again from its page)."""
    fields: dict[str, Any] = {
        "status": EvalRun.Status.FAILED,
        "error": reason[:2000],
        "finished_at": _now(),
    }
    if report is not None:  # as far as it went: which items failed, and why
        fields["report"] = json_safe(report)
    EvalRun.objects.filter(pk=run.pk).update(**fields)
    if run.training_job_id:
        note = f"the evaluation of {run.version.name} after training failed: {reason}"
        append_log(run.training_job_id, note)
        TrainingJob.objects.filter(pk=run.training_job_id).update(
            status=TrainingJob.Status.FAILED, error=note[:2000], finished_at=_now()
        )


def run_eval(
    run_id: int, task_id: str | None = None, *, attempt: int = 0, retries: int = 0
) -> RunState:
    """Evaluate a version and store the report, headline and gate verdict.

    ``attempt`` and ``retries`` as for :func:`run_training`: a transient failure with retries
    left returns :data:`RETRY` with the run queued again and the reason on it."""
    from training.evaluation import EvaluationConfig, headline, run_evaluation

    state, run = claim_eval_run(run_id, task_id)
    if state in (MISSING, FINISHED, BUSY):
        return state
    assert run is not None
    version = run.version
    reporter = EvalReporter(run.pk)
    try:
        config = EvaluationConfig.from_dict(evaluation_config(run))
        services.load_version_adapter(version, config.endpoint)
        EvalRun.objects.filter(pk=run.pk).update(config=config.to_dict())
        with reporter.writer:
            report = run_evaluation(config, progress=reporter.progress)
        if config.judge is not None:  # the LLM judge against teachers, on this version's turns
            report["judge_agreement"] = judge_teacher_agreement(version.messages.all())
        report = json_safe(report)
        run.report = report
        active = services.serving_version(None)
        baseline = services.latest_eval(active, exclude=run.pk)
        gate = services.gate_verdict(run, baseline)
        EvalRun.objects.filter(pk=run.pk).update(
            status=EvalRun.Status.SUCCEEDED,
            report=report,
            headline=json_safe(headline(report)),
            gate=json_safe(gate),
            baseline=baseline,
            finished_at=_now(),
            error="",
        )
    except Exception as exc:
        reason = describe(exc)
        if is_transient(exc) and attempt < retries:
            logger.warning("evaluation %s: %s; retrying", run_id, reason)
            _requeue_eval(run, reason, attempt, retries)
            return RETRY
        logger.exception("evaluation %s failed", run_id)
        if attempt:
            reason = f"{reason} (gave up after {attempt} retries)"
        _fail_eval(run, reason, getattr(exc, "report", None))
        return FAILED
    return SUCCEEDED
