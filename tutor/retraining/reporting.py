"""How a running job or evaluation reports: its progress, log lines and heartbeat are written
by a thread of its own (:class:`BackgroundWriter`), so the trainer never waits on the
database and the row is written by one thread whatever thread the trainer reports from
(evaluation reports from inside an event loop, where Django refuses database calls)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from training.jobs import Progress

from .jobs import apply_progress, capped_log, stamped
from .models import EvalRun, TrainingJob

logger = logging.getLogger(__name__)


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

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join()


class _Heartbeat:
    """A row's heartbeat, written at most every ``TUTOR_JOB_HEARTBEAT_SECONDS`` (a flush
    writes it too, and counts as one)."""

    def __init__(self, model: type[TrainingJob] | type[EvalRun], pk: int) -> None:
        self.model = model
        self.pk = pk
        self._last = 0.0

    def beat_if_due(self) -> None:
        if time.monotonic() - self._last >= settings.TUTOR_JOB_HEARTBEAT_SECONDS:
            self.model.objects.filter(pk=self.pk).update(heartbeat_at=timezone.now())
            self.written()

    def written(self) -> None:
        self._last = time.monotonic()


class JobReporter:
    """The callbacks handed to ``training.grpo.train``; thread-safe, never touch the database."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.cancelled = threading.Event()
        self._heartbeat = _Heartbeat(TrainingJob, job_id)
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
        self._heartbeat.beat_if_due()

    def _flush(self, items: list[Any]) -> None:
        with transaction.atomic():
            job = TrainingJob.objects.select_for_update().filter(pk=self.job_id).first()
            if job is None:
                return
            fields = {"heartbeat_at"}
            for kind, payload in items:
                if kind == "log":
                    job.log = capped_log(job.log, stamped(payload))
                    fields.add("log")
                elif kind == "progress":
                    fields |= apply_progress(job, payload)
            job.heartbeat_at = timezone.now()
            job.save(update_fields=sorted(fields))
        self._heartbeat.written()


class EvalReporter:
    """The progress callback handed to ``training.evaluation.run_evaluation``."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self._heartbeat = _Heartbeat(EvalRun, run_id)
        self.writer = BackgroundWriter(self._flush, self._heartbeat.beat_if_due, interval=1.0)

    def progress(self, done: int, total: int, task: str) -> None:
        self.writer.put((done, total, task))

    def _flush(self, items: list[Any]) -> None:
        done, total, task = items[-1]
        EvalRun.objects.filter(pk=self.run_id).update(
            done=max(0, int(done)),
            total=max(0, int(total)),
            current_task=str(task)[:64],
            heartbeat_at=timezone.now(),
        )
        self._heartbeat.written()
