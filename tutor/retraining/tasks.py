"""Retraining and evaluation as Celery tasks on the ``training`` queue (settings
``CELERY_TASK_ROUTES``): thin adapters around :mod:`tutor.retraining.runner`.

``acks_late`` with ``reject_on_worker_lost``: a worker that dies mid-job leaves the message
to be delivered again, and the next delivery resumes the job from its last checkpoint. A
delivery that finds the job running on a live worker retries later, watching it to its end.

A transient infrastructure failure (the model server unreachable) retries with a growing
countdown, at most ``runner.infra_retries()`` times; ``infra_attempt`` counts those retries
(Celery's own count also includes the waits for a busy job, which are not bounded).
"""

from celery import shared_task
from django.conf import settings

from . import runner


def _check_back_in() -> float:
    return settings.TUTOR_JOB_STALE_SECONDS + 1


def _follow_up(task, outcome: runner.RunState, infra_attempt: int) -> str:
    """Retry the task when the runner asks for it; else return the outcome."""
    if outcome == runner.BUSY:
        raise task.retry(countdown=_check_back_in())
    if outcome == runner.RETRY:
        raise task.retry(
            countdown=runner.infra_retry_delay(infra_attempt),
            kwargs={**(task.request.kwargs or {}), "infra_attempt": infra_attempt + 1},
        )
    return str(outcome)  # a plain string for the result backend


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_training_job_task(self, job_id: int, infra_attempt: int = 0) -> str:
    outcome = runner.run_training(
        job_id, task_id=self.request.id, attempt=infra_attempt, retries=runner.infra_retries()
    )
    return _follow_up(self, outcome, infra_attempt)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_evaluation_task(self, eval_run_id: int, infra_attempt: int = 0) -> str:
    outcome = runner.run_eval(
        eval_run_id, task_id=self.request.id, attempt=infra_attempt, retries=runner.infra_retries()
    )
    return _follow_up(self, outcome, infra_attempt)
