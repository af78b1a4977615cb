"""Helpers for the retraining tests: versions, evaluation reports in the shape
``training.evaluation.run_evaluation`` returns, finished evaluation runs."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.utils import timezone

from tests.support.adapters import write_adapter
from tutor.retraining.models import EvalRun, ModelVersion


def metric(value: float, low: float, high: float, n: int = 20) -> dict:
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def report(*, leak: tuple[float, float, float], gain: tuple[float, float, float]) -> dict:
    """A minimal evaluation report: the interactive task's two gated figures."""
    return {
        "schema": "test",
        "tasks": {
            "interactive": {
                "n": 20,
                "metrics": {
                    "leak_rate": metric(*leak),
                    "solve_gain": metric(*gain),
                    "solve_after": metric(0.5, 0.4, 0.6),
                },
            }
        },
    }


GOOD = report(leak=(0.10, 0.05, 0.15), gain=(0.30, 0.20, 0.40))
LEAKY = report(leak=(0.60, 0.50, 0.70), gain=(0.35, 0.25, 0.45))


def make_version(name: str, *, adapter_path: str | None = None, **fields) -> ModelVersion:
    """A version whose adapter is a sound one in TUTOR_ADAPTER_DIR/<name>, unless given."""
    if adapter_path is None:
        adapter_path = str(write_adapter(Path(settings.TUTOR_ADAPTER_DIR) / name))
    return ModelVersion.objects.create(
        name=name, base_model="default", adapter_path=adapter_path, **fields
    )


def finished_eval(version: ModelVersion, rep: dict) -> EvalRun:
    from training.evaluation import headline

    return EvalRun.objects.create(
        version=version,
        status=EvalRun.Status.SUCCEEDED,
        report=rep,
        headline=headline(rep),
        done=1,
        total=1,
        finished_at=timezone.now(),
    )
