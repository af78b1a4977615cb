"""Admin pages for retraining: jobs (start, follow, cancel), model versions (compare,
evaluate, promote, roll back). Platform admins only; everybody else gets 403."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from inference import adapters
from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role
from tutor.classes.models import Classroom

from . import services
from .forms import EvaluationForm, PromoteForm, TrainingJobForm
from .models import EvalRun, ModelVersion, Promotion, TrainingJob

admin_required = role_required(Role.ADMIN)

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


def _iso(value):
    return value.isoformat() if value is not None else None


# ---- jobs -------------------------------------------------------------------------------------


@never_cache
@admin_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = TrainingJob.objects.select_related("base_version", "result_version", "created_by")[:100]
    return render(request, "retraining/job_list.html", {"jobs": jobs})


@admin_required
@require_http_methods(["GET", "POST"])
def job_create(request: HttpRequest) -> HttpResponse:
    form = TrainingJobForm(
        request.POST or None, initial={"base_version": services.serving_version(None)}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            job = TrainingJob.objects.create(
                created_by=request.user,
                base_version=data["base_version"],
                config=form.train_config().to_dict(),
                date_from=data["date_from"],
                date_to=data["date_to"],
                include_problem_bank=data["include_problem_bank"],
                total_steps=data["steps"],
            )
            job.classrooms.set(data["classrooms"])
            services.queue_training_job(job)
        messages.success(request, f"Training job {job.pk} queued.")
        return redirect("retraining:job_detail", job_id=job.pk)
    return render(request, "retraining/job_form.html", {"form": form})


@never_cache
@admin_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(
        TrainingJob.objects.select_related("base_version", "result_version", "created_by"),
        pk=job_id,
    )
    return render(
        request,
        "retraining/job_detail.html",
        {
            "job": job,
            "classrooms": job.classrooms.order_by("name"),
            "config_rows": sorted(job.config.items()),
            "progress": job_payload(job),
        },
    )


def _heartbeat_age(heartbeat_at) -> float | None:
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


def job_payload(job: TrainingJob) -> dict[str, Any]:
    age = _heartbeat_age(job.heartbeat_at)
    stale = job.status == TrainingJob.Status.RUNNING and (
        age is None or age > settings.TUTOR_JOB_STALE_SECONDS
    )
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
        "heartbeat_age_s": age,
        "stale": stale,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "dataset": job.dataset_stats,
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


@never_cache
@admin_required
def job_progress(request: HttpRequest, job_id: int) -> JsonResponse:
    job = get_object_or_404(TrainingJob.objects.select_related("result_version"), pk=job_id)
    return JsonResponse(job_payload(job), json_dumps_params={"ensure_ascii": False})


@require_POST
@admin_required
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(TrainingJob, pk=job_id)
    job = services.request_cancel(job)
    if job.status == TrainingJob.Status.CANCELLED:
        messages.success(request, f"Job {job.pk} cancelled.")
    elif job.is_finished:
        messages.info(request, f"Job {job.pk} had already ended ({job.get_status_display()}).")
    else:
        messages.success(request, f"Job {job.pk} will stop after its current step.")
    return redirect("retraining:job_detail", job_id=job.pk)


@require_POST
@admin_required
def job_resume(request: HttpRequest, job_id: int) -> HttpResponse:
    """Queue a failed job again, or one whose worker stopped answering: it resumes from its
    last checkpoint."""
    with transaction.atomic():
        job = get_object_or_404(TrainingJob.objects.select_for_update(), pk=job_id)
        payload_stale = job.status == TrainingJob.Status.RUNNING and job_payload(job)["stale"]
        if job.status != TrainingJob.Status.FAILED and not payload_stale:
            messages.error(request, "Only a failed job or one whose worker is gone can resume.")
            return redirect("retraining:job_detail", job_id=job.pk)
        if job.status == TrainingJob.Status.FAILED:
            job.status = TrainingJob.Status.QUEUED
            job.error = ""
            job.finished_at = None
            job.save(update_fields=["status", "error", "finished_at"])
        services.queue_training_job(job)
    messages.success(request, f"Job {job.pk} queued again; it resumes from its last checkpoint.")
    return redirect("retraining:job_detail", job_id=job.pk)


# ---- versions ---------------------------------------------------------------------------------


def _latest_runs() -> dict[int, EvalRun]:
    latest: dict[int, EvalRun] = {}
    for run in EvalRun.objects.filter(status=EvalRun.Status.SUCCEEDED).order_by(
        "finished_at", "id"
    ):
        latest[run.version_id] = run
    return latest


def _serving_scopes() -> dict[int, list[str]]:
    scopes: dict[int, list[str]] = {}
    promotions = Promotion.objects.filter(active=True).select_related("classroom")
    for promotion in promotions:
        label = promotion.classroom.name if promotion.classroom else "globally"
        scopes.setdefault(promotion.version_id, []).append(label)
    if not any(p.classroom_id is None for p in promotions):
        scopes.setdefault(services.base_version().pk, []).insert(0, "globally (base)")
    return scopes


def version_rows() -> list[dict[str, Any]]:
    latest = _latest_runs()
    scopes = _serving_scopes()
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


@never_cache
@admin_required
def version_list(request: HttpRequest) -> HttpResponse:
    services.base_version()
    rows = version_rows()
    # The table shows the curves' final values; a version's page shows all its metrics.
    wanted = [f"{key}_last" for key in CHART_METRICS] + list(CHART_METRICS)
    training_keys = [
        key for key in wanted if any(key in (row["training_metrics"] or {}) for row in rows)
    ]
    active = Promotion.objects.filter(active=True).select_related("version", "classroom")
    history = Promotion.objects.select_related("version", "classroom", "promoted_by")[:30]
    versions = list(ModelVersion.objects.order_by("-created_at", "-id"))
    global_version = services.serving_version(None)
    return render(
        request,
        "retraining/version_list.html",
        {
            "rows": rows,
            "training_keys": training_keys,
            "headline_metrics": HEADLINE_METRICS,
            "versions": versions,
            "active_promotions": active,
            "global_version": global_version,
            # B defaults to the newest version that is not the one serving globally.
            "compare_b": next((v for v in versions if v.pk != global_version.pk), None),
            "history": history,
        },
    )


@never_cache
@admin_required
def versions_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"versions": version_rows(), "headline_metrics": list(HEADLINE_METRICS)},
        json_dumps_params={"ensure_ascii": False},
    )


@never_cache
@admin_required
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(
        ModelVersion.objects.select_related("parent", "training_job"), pk=version_id
    )
    runs = list(version.eval_runs.select_related("baseline__version", "created_by")[:20])
    latest = services.latest_eval(version)
    try:
        global_gate = services.check_gate(version, None)
    except Exception as exc:  # the gate module failing must not hide the page
        global_gate = services.GateCheck(False, [f"the gate could not run: {exc}"])
    return render(
        request,
        "retraining/version_detail.html",
        {
            "version": version,
            "runs": runs,
            "latest": latest,
            "latest_headline": _headline_rows(latest),
            "global_gate": global_gate,
            "serving": _serving_scopes().get(version.pk, []),
            "promotions": version.promotions.select_related("classroom", "promoted_by")[:30],
            "eval_form": EvaluationForm(),
            "promote_form": PromoteForm(),
        },
    )


def _headline_rows(run: EvalRun | None) -> list[tuple[str, dict | None]]:
    if run is None:
        return []
    headline = run.headline or {}
    names = list(HEADLINE_METRICS) + sorted(k for k in headline if k not in HEADLINE_METRICS)
    return [(name, headline.get(name)) for name in names]


@require_POST
@admin_required
def version_evaluate(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = EvaluationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the evaluation settings: " + _errors(form))
        return redirect("retraining:version_detail", version_id=version.pk)
    with transaction.atomic():
        run = services.start_evaluation(version, request.user, **form.cleaned_data)
    messages.success(request, f"Evaluation {run.pk} of {version.name} queued.")
    return redirect("retraining:version_detail", version_id=version.pk)


def _errors(form) -> str:
    return "; ".join(
        f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
        for name, errors in form.errors.items()
    )


@require_POST
@admin_required
def version_promote(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = PromoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Promotion not done: " + _errors(form))
        return redirect("retraining:version_detail", version_id=version.pk)
    data = form.cleaned_data
    classrooms = None if data["scope"] == "global" else list(data["classrooms"])
    try:
        result = services.promote(version, request.user, classrooms, override=data["override"])
    except services.PromotionRefused as exc:
        messages.error(
            request, f"{version.name} was not promoted. The gate says: " + "; ".join(exc.reasons)
        )
        return redirect("retraining:version_detail", version_id=version.pk)
    where = "globally" if classrooms is None else ", ".join(c.name for c in classrooms)
    overridden = any(p.override for p in result.promotions)
    messages.success(
        request,
        f"{version.name} now serves new sessions {where}"
        + (" (over a failed gate: recorded)" if overridden else "")
        + ".",
    )
    _load_now(request, version)
    return redirect("retraining:version_detail", version_id=version.pk)


def _load_now(request: HttpRequest, version: ModelVersion) -> None:
    """Load the adapter into vLLM now, on every replica; where that fails the chat loads it on
    first use. A replica that is down costs its connect timeout, not the promotion."""
    if not version.adapter_path:
        return
    try:
        services.load_version_adapter(
            version, http_timeout=adapters.httpx.Timeout(60.0, connect=2.0)
        )
    except adapters.PartialLoad as exc:
        report = exc.report
        failed = "; ".join(f"{url} ({error})" for url, error in report.failed.items())
        messages.warning(
            request,
            f"{version.name} is loaded on {len(report.serving)} of {report.replicas} vLLM "
            f"replicas; not on {failed}. Those load it when a session first asks for it.",
        )
    except adapters.AdapterError as exc:
        messages.warning(
            request, f"vLLM did not load {version.name} now ({exc}); the chat retries on use."
        )


@require_POST
@admin_required
def rollback(request: HttpRequest) -> HttpResponse:
    scope = request.POST.get("scope", "global")
    classroom = None
    if scope != "global":
        classroom = get_object_or_404(Classroom, pk=scope if scope.isdigit() else 0)
    try:
        restored = services.rollback(classroom, request.user)
    except services.PromotionRefused as exc:
        messages.error(request, "; ".join(exc.reasons))
        return redirect("retraining:versions")
    where = classroom.name if classroom else "globally"
    now_serving = services.serving_version(classroom)
    messages.success(
        request,
        f"Rolled back {where}: {now_serving.name} serves new sessions"
        + ("" if restored else " (the fallback)")
        + ".",
    )
    _load_now(request, now_serving)
    return redirect("retraining:versions")


@never_cache
@admin_required
def compare(request: HttpRequest) -> HttpResponse:
    ids = [request.GET.get("a"), request.GET.get("b")]
    if not all(i and i.isdigit() for i in ids):
        messages.error(request, "Choose two versions to compare.")
        return redirect("retraining:versions")
    versions = [
        get_object_or_404(ModelVersion.objects.select_related("training_job"), pk=int(i))
        for i in ids
    ]
    runs = [services.latest_eval(v) for v in versions]
    headlines = [(r.headline or {}) if r else {} for r in runs]
    names = list(HEADLINE_METRICS) + sorted(
        {k for h in headlines for k in h if k not in HEADLINE_METRICS}
    )
    eval_rows = [(name, [h.get(name) for h in headlines]) for name in names]
    training_keys = sorted({k for v in versions for k in (v.metrics or {})})
    training_rows = [(key, [(v.metrics or {}).get(key) for v in versions]) for key in training_keys]
    configs = [(v.training_job.config or {}) if v.training_job else {} for v in versions]
    config_keys = sorted({k for c in configs for k in c})
    config_rows = [(key, [c.get(key) for c in configs]) for key in config_keys]
    # B as the candidate over A (the gate an admin would face promoting B where A serves).
    gate = services.gate_verdict(runs[1], runs[0]) if runs[1] is not None else None
    return render(
        request,
        "retraining/compare.html",
        {
            "versions": versions,
            "runs": runs,
            "eval_rows": eval_rows,
            "training_rows": training_rows,
            "config_rows": config_rows,
            "gate": gate,
        },
    )


@never_cache
@admin_required
def eval_progress(request: HttpRequest, eval_id: int) -> JsonResponse:
    run = get_object_or_404(EvalRun.objects.select_related("version"), pk=eval_id)
    return JsonResponse(
        {
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
            "heartbeat_age_s": _heartbeat_age(run.heartbeat_at),
        },
        json_dumps_params={"ensure_ascii": False},
    )
