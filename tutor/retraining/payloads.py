"""What the retraining pages and their charts get: a job's progress, an evaluation's progress,
the versions table, a version's headline figures, the comparison of two versions. Reads only;
every change of state is in :mod:`.services` and :mod:`.jobs`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.urls import reverse
from django.utils import timezone

from . import services
from .jobs import heartbeat_stale
from .models import EvalRun, ModelVersion, Promotion, TrainingJob

LOG_TAIL_CHARS = 20_000
CHART_POINTS = 1000  # per curve, sent every 2 s while a job runs
CHART_METRICS = ("reward_mean", "solve_rate", "leak_rate", "kl")
HEADLINE_METRICS = (
    "solve_gain",
    "leak_rate",
    "visible_leak_rate",
    "solve_after",
    "win_rate",
    "accuracy",
)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def heartbeat_age(heartbeat_at: dt.datetime | None) -> float | None:
    """Seconds since the last heartbeat, to a tenth; None before the first."""
    if heartbeat_at is None:
        return None
    return round((timezone.now() - heartbeat_at).total_seconds(), 1)


def thin(history: list[dict], points: int = CHART_POINTS) -> list[dict]:
    """At most about ``points`` evenly spaced entries (the last one always kept)."""
    if len(history) <= points:
        return history
    stride = -(-len(history) // points)
    kept = history[::stride]
    if kept[-1] is not history[-1]:
        kept.append(history[-1])
    return kept


# ---- jobs and evaluation runs -----------------------------------------------------------------


def job_payload(job: TrainingJob) -> dict[str, Any]:
    """A job's progress, curves and log tail, as its page polls them."""
    version = job.result_version
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "finished": job.is_finished,
        "cancel_requested": job.cancel_requested,
        "step": job.step,
        "total_steps": job.total_steps,
        "percent": job.percent,
        "metrics": job.metrics,
        "history": thin(job.history or []),
        "chart_metrics": list(CHART_METRICS),
        "checkpoint": job.checkpoint_path,
        "attempts": job.attempts,
        "error": job.error,
        "heartbeat_age_s": heartbeat_age(job.heartbeat_at),
        "stale": job.status == TrainingJob.Status.RUNNING and heartbeat_stale(job.heartbeat_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "dataset": job.dataset_stats,
        "stages": job.stages or {},
        "log": job.log[-LOG_TAIL_CHARS:],
        "log_truncated": len(job.log) > LOG_TAIL_CHARS,
        "result_version": (
            {
                "name": version.name,
                "url": reverse("retraining:version_detail", args=[version.pk]),
            }
            if version is not None
            else None
        ),
    }


def eval_payload(run: EvalRun) -> dict[str, Any]:
    """An evaluation's progress and, once finished, its headline and gate."""
    return {
        "id": run.pk,
        "version": run.version.name,
        "status": run.status,
        "status_display": run.get_status_display(),
        "finished": run.is_finished,
        "done": run.done,
        "total": run.total,
        "percent": run.percent,
        "task": run.current_task,
        "error": run.error,
        "headline": run.headline,
        "gate": run.gate,
        "heartbeat_age_s": heartbeat_age(run.heartbeat_at),
    }


# ---- versions ---------------------------------------------------------------------------------


def headline_names(headlines: Iterable[dict[str, Any]]) -> list[str]:
    """The headline metrics in their usual order, then any other the runs report, sorted."""
    extra = {name for headline in headlines for name in headline if name not in HEADLINE_METRICS}
    return list(HEADLINE_METRICS) + sorted(extra)


def headline_rows(run: EvalRun | None) -> list[tuple[str, dict | None]]:
    """(metric, figure) for a version's latest evaluation; none without one."""
    if run is None:
        return []
    headline = run.headline or {}
    return [(name, headline.get(name)) for name in headline_names([headline])]


def latest_runs() -> dict[int, EvalRun]:
    """Each version's latest succeeded evaluation, by version id."""
    latest: dict[int, EvalRun] = {}
    for run in EvalRun.objects.filter(status=EvalRun.Status.SUCCEEDED).order_by(
        "finished_at", "id"
    ):
        latest[run.version_id] = run
    return latest


def serving_scopes() -> dict[int, list[str]]:
    """Where each version serves new sessions, by version id: class names, or "globally"."""
    scopes: dict[int, list[str]] = {}
    promotions = Promotion.objects.filter(active=True).select_related("classroom")
    for promotion in promotions:
        label = promotion.classroom.name if promotion.classroom else "globally"
        scopes.setdefault(promotion.version_id, []).append(label)
    if not any(p.classroom_id is None for p in promotions):
        scopes.setdefault(services.base_version().pk, []).insert(0, "globally (base)")
    return scopes


def version_rows() -> list[dict[str, Any]]:
    """The versions table (and the trade-off chart's points)."""
    latest = latest_runs()
    scopes = serving_scopes()
    rows = []
    for version in ModelVersion.objects.select_related("parent", "training_job"):
        run = latest.get(version.pk)
        headline = (run.headline or {}) if run else {}
        rows.append(
            {
                "id": version.pk,
                "name": version.name,
                "status": version.status,
                "is_base": version.is_base,
                "parent": version.parent.name if version.parent else None,
                "created_at": _iso(version.created_at),
                "url": reverse("retraining:version_detail", args=[version.pk]),
                "lambda": (version.training_job.config or {}).get("lambda_")
                if version.training_job
                else None,
                "training_metrics": version.metrics,
                "eval_id": run.pk if run else None,
                "headline": {name: headline.get(name) for name in HEADLINE_METRICS},
                "gate": run.gate if run else None,
                "serving": scopes.get(version.pk, []),
            }
        )
    return rows


def version_list_context() -> dict[str, Any]:
    """The versions page: the table, what serves where, and the recent promotions."""
    services.base_version()
    rows = version_rows()
    # The table shows the curves' final values; a version's page shows all its metrics.
    wanted = [f"{key}_last" for key in CHART_METRICS] + list(CHART_METRICS)
    training_keys = [
        key for key in wanted if any(key in (row["training_metrics"] or {}) for row in rows)
    ]
    versions = list(ModelVersion.objects.order_by("-created_at", "-id"))
    global_version = services.serving_version(None)
    return {
        "rows": rows,
        "training_keys": training_keys,
        "headline_metrics": HEADLINE_METRICS,
        "versions": versions,
        "active_promotions": Promotion.objects.filter(active=True).select_related(
            "version", "classroom"
        ),
        "global_version": global_version,
        # B defaults to the newest version that is not the one serving globally.
        "compare_b": next((v for v in versions if v.pk != global_version.pk), None),
        "history": Promotion.objects.select_related("version", "classroom", "promoted_by")[:30],
    }


SIDE_BY_SIDE_DIALOGUES = 5


def interactive_items(run: EvalRun | None) -> dict[str, dict[str, Any]]:
    """The interactive task's items of a finished run that kept their dialogue, by item id."""
    if run is None or not isinstance(run.report, dict):
        return {}
    task = (run.report.get("tasks") or {}).get("interactive") or {}
    items = task.get("items") or []
    return {
        str(item["id"]): item
        for item in items
        if isinstance(item, dict) and item.get("transcript") and not item.get("error")
    }


def side_by_side(
    runs: list[EvalRun | None], labels: list[str], limit: int = SIDE_BY_SIDE_DIALOGUES
) -> list[dict[str, Any]]:
    """Up to ``limit`` held-out problems that every run's evaluation held a dialogue on (the
    same items and seeds), each with every run's dialogue: to read what changed."""
    by_run = [interactive_items(run) for run in runs]
    if len(by_run) < 2 or not all(by_run):
        return []
    shared = [item_id for item_id in by_run[0] if all(item_id in items for items in by_run[1:])]
    rows = []
    for item_id in sorted(shared)[:limit]:
        items = [items[item_id] for items in by_run]
        rows.append(
            {
                "id": item_id,
                "problem": next(
                    (i.get("problem_text") for i in items if i.get("problem_text")), ""
                ),
                "dialogues": [
                    {
                        "label": label,
                        "turns": [
                            {"role": role, "text": text} for role, text in item["transcript"]
                        ],
                        "leaked": bool(item.get("leaked")),
                        "gain": item.get("gain"),
                    }
                    for item, label in zip(items, labels, strict=True)
                ],
            }
        )
    return rows


def version_detail_context(version: ModelVersion) -> dict[str, Any]:
    """A version's page: its evaluations, the global gate now, where it serves, and its
    dialogues beside those of the version serving everyone (same held-out problems)."""
    latest = services.latest_eval(version)
    active = services.serving_version(None)
    try:
        global_gate = services.check_gate(version, None)
    except Exception as exc:  # the gate module failing must not hide the page
        global_gate = services.GateCheck(False, [f"the gate could not run: {exc}"])
    return {
        "version": version,
        "runs": list(version.eval_runs.select_related("baseline__version", "created_by")[:20]),
        "latest": latest,
        "latest_headline": headline_rows(latest),
        "global_gate": global_gate,
        "serving": serving_scopes().get(version.pk, []),
        "promotions": version.promotions.select_related("classroom", "promoted_by")[:30],
        "active": active,
        "side_by_side": side_by_side(
            [services.latest_eval(active), latest],
            [f"{active.name} (serving)", f"{version.name} (this version)"],
        )
        if active is not None and active.pk != version.pk
        else [],
    }


def comparison_context(versions: list[ModelVersion]) -> dict[str, Any]:
    """Two versions side by side (A, B): evaluation headlines, training metrics, training
    settings, and the gate B would face where A serves."""
    runs = [services.latest_eval(v) for v in versions]
    headlines = [(r.headline or {}) if r else {} for r in runs]
    eval_rows = [(name, [h.get(name) for h in headlines]) for name in headline_names(headlines)]
    training_keys = sorted({k for v in versions for k in (v.metrics or {})})
    training_rows = [(key, [(v.metrics or {}).get(key) for v in versions]) for key in training_keys]
    configs = [(v.training_job.config or {}) if v.training_job else {} for v in versions]
    config_keys = sorted({k for c in configs for k in c})
    config_rows = [(key, [c.get(key) for c in configs]) for key in config_keys]
    # B as the candidate over A (the gate an admin would face promoting B where A serves).
    gate = services.gate_verdict(runs[1], runs[0]) if runs[1] is not None else None
    return {
        "versions": versions,
        "runs": runs,
        "eval_rows": eval_rows,
        "training_rows": training_rows,
        "config_rows": config_rows,
        "gate": gate,
        "side_by_side": side_by_side(
            runs, [f"A: {v.name}" for v in versions[:1]] + [f"B: {v.name}" for v in versions[1:2]]
        ),
    }
