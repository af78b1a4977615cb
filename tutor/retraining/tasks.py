"""Retraining and evaluation as Celery tasks on the ``training`` queue (settings
``CELERY_TASK_ROUTES``): thin adapters around :mod:`tutor.retraining.runner`.

``acks_late`` with ``reject_on_worker_lost``: a worker that dies mid-job leaves the message
to be delivered again, and the next delivery resumes the job from its last checkpoint. A
delivery that finds the job running on a live worker retries later, watching it to its end.
"""

from celery import shared_task
from django.conf import settings

from . import runner


def _check_back_in() -> float:
    return settings.TUTOR_JOB_STALE_SECONDS + 1


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_training_job_task(self, job_id: int) -> str:
    outcome = runner.run_training(job_id, task_id=self.request.id)
    if outcome == runner.BUSY:
        raise self.retry(countdown=_check_back_in())
    return outcome


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_evaluation_task(self, eval_run_id: int) -> str:
    outcome = runner.run_eval(eval_run_id, task_id=self.request.id)
    if outcome == runner.BUSY:
        raise self.retry(countdown=_check_back_in())
    return outcome
