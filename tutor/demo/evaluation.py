"""The base version's first evaluation, so that the versions chart has a point on a new install.

Queued like any other evaluation (:func:`tutor.retraining.jobs.start_evaluation`: by task name,
after the commit, on the ``training`` queue), with a small item limit and short dialogues so
that it finishes in minutes on a CPU. It waits in the queue until a training worker and the
model server are up, and retries while the model server is still starting.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tutor.retraining.jobs import start_evaluation
from tutor.retraining.models import EvalRun
from tutor.retraining.services import base_version

#: EvaluationConfig overrides of the first evaluation: a few items per task, short dialogues.
FIRST_EVALUATION: dict[str, Any] = {"limit": 3, "max_turns": 2, "k": 2, "max_tokens": 128}


def queue_base_evaluation(**overrides: Any) -> EvalRun | None:
    """Queue an evaluation of the base version unless it has one that succeeded or is still
    queued or running (a failed one is tried again). Returns the new run, or None."""
    with transaction.atomic():
        version = base_version()
        pending_or_done = EvalRun.objects.filter(version=version).exclude(
            status=EvalRun.Status.FAILED
        )
        if pending_or_done.exists():
            return None
        return start_evaluation(version, None, **{**FIRST_EVALUATION, **overrides})
