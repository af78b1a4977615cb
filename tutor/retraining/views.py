"""Admin pages for retraining: jobs (start, follow, cancel), model versions (compare,
evaluate, promote, roll back). Platform admins only; everybody else gets 403.

Each view parses the request, calls :mod:`.services` or :mod:`.jobs` for a change and
:mod:`.payloads` for what to show, and renders."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role
from tutor.classes.models import Classroom

from . import jobs, payloads, services
from .forms import EvaluationForm, PromoteForm, TrainingJobForm
from .models import EvalRun, ModelVersion, TrainingJob

admin_required = role_required(Role.ADMIN)

# ---- jobs -------------------------------------------------------------------------------------


@never_cache
@admin_required
def job_list(request: HttpRequest) -> HttpResponse:
    recent = TrainingJob.objects.select_related("base_version", "result_version", "created_by")
    return render(request, "retraining/job_list.html", {"jobs": recent[:100]})


@admin_required
@require_http_methods(["GET", "POST"])
def job_create(request: HttpRequest) -> HttpResponse:
    form = TrainingJobForm(
        request.POST or None, initial={"base_version": services.serving_version(None)}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        job = jobs.create_training_job(
            request.user,
            base_version=data["base_version"],
            config=form.train_config().to_dict(),
            classrooms=data["classrooms"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            include_problem_bank=data["include_problem_bank"],
            total_steps=data["steps"],
        )
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
            "progress": payloads.job_payload(job),
        },
    )


@never_cache
@admin_required
def job_progress(request: HttpRequest, job_id: int) -> JsonResponse:
    job = get_object_or_404(TrainingJob.objects.select_related("result_version"), pk=job_id)
    return JsonResponse(payloads.job_payload(job), json_dumps_params={"ensure_ascii": False})


@require_POST
@admin_required
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(TrainingJob, pk=job_id)
    job = jobs.request_cancel(job)
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
    job = get_object_or_404(TrainingJob, pk=job_id)
    if not jobs.resume_job(job):
        messages.error(request, "Only a failed job or one whose worker is gone can resume.")
        return redirect("retraining:job_detail", job_id=job.pk)
    messages.success(request, f"Job {job.pk} queued again; it resumes from its last checkpoint.")
    return redirect("retraining:job_detail", job_id=job.pk)


# ---- versions ---------------------------------------------------------------------------------


@never_cache
@admin_required
def version_list(request: HttpRequest) -> HttpResponse:
    return render(request, "retraining/version_list.html", payloads.version_list_context())


@never_cache
@admin_required
def versions_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"versions": payloads.version_rows(), "headline_metrics": list(payloads.HEADLINE_METRICS)},
        json_dumps_params={"ensure_ascii": False},
    )


@never_cache
@admin_required
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(
        ModelVersion.objects.select_related("parent", "training_job"), pk=version_id
    )
    return render(
        request,
        "retraining/version_detail.html",
        {
            **payloads.version_detail_context(version),
            "eval_form": EvaluationForm(),
            "promote_form": PromoteForm(),
        },
    )


@require_POST
@admin_required
def version_evaluate(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = EvaluationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the evaluation settings: " + _errors(form))
        return redirect("retraining:version_detail", version_id=version.pk)
    with transaction.atomic():
        run = jobs.start_evaluation(version, request.user, **form.cleaned_data)
    messages.success(request, f"Evaluation {run.pk} of {version.name} queued.")
    return redirect("retraining:version_detail", version_id=version.pk)


def _errors(form: forms.Form) -> str:
    """The form's errors on one line, each after its field's name."""
    parts = []
    for name, errors in form.errors.items():
        text = " ".join(map(str, errors))
        parts.append(text if name == "__all__" else f"{name}: {text}")
    return "; ".join(parts)


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
        # The gate and the file checks first (nothing is loaded for a refused promotion),
        # then the model server: one that refuses the adapter refuses the promotion.
        services.check_promotion(version, classrooms, override=data["override"])
        load_note = services.preload_for_promotion(version)
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
    if load_note:
        messages.warning(request, load_note)
    return redirect("retraining:version_detail", version_id=version.pk)


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
    try:  # loaded now where the servers allow; the chat loads it on first use elsewhere
        note = services.preload_for_promotion(now_serving)
    except services.PromotionRefused as exc:
        note = "; ".join(exc.reasons)
    if note:
        messages.warning(request, note)
    return redirect("retraining:versions")


@never_cache
@admin_required
def compare(request: HttpRequest) -> HttpResponse:
    ids = [request.GET.get("a", ""), request.GET.get("b", "")]
    if not all(i and i.isdigit() for i in ids):
        messages.error(request, "Choose two versions to compare.")
        return redirect("retraining:versions")
    versions = [
        get_object_or_404(ModelVersion.objects.select_related("training_job"), pk=int(i))
        for i in ids
    ]
    return render(request, "retraining/compare.html", payloads.comparison_context(versions))


@never_cache
@admin_required
def eval_progress(request: HttpRequest, eval_id: int) -> JsonResponse:
    run = get_object_or_404(EvalRun.objects.select_related("version"), pk=eval_id)
    return JsonResponse(payloads.eval_payload(run), json_dumps_params={"ensure_ascii": False})
