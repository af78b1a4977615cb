"""Model versions, promotions and job bookkeeping, as plain synchronous functions.

Which version serves a session: the class's active promotion, else the global one, else the
base model (:func:`serving_version`). Promoting ends the scope's active promotion and
remembers it; rolling back re-activates the one before.

A version's adapter folder must lie inside ``TUTOR_ADAPTER_DIR`` (:func:`check_adapter_path`)
to be registered, promoted or loaded, and must hold an adapter vLLM can load
(:func:`adapter_problem`: its config, its rank against the server's ``--max-lora-rank``, an
intact safetensors file) to be promoted: a broken adapter is refused before it can serve.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from inference import adapters

from .models import EvalRun, ModelVersion, Promotion, TrainingJob

logger = logging.getLogger(__name__)


# ---- versions ---------------------------------------------------------------------------------


def base_version() -> ModelVersion:
    """The base model as vLLM serves it (``TUTOR_MODEL_NAME``, no adapter); created on first
    use so that something can always serve."""
    version = ModelVersion.objects.filter(name=settings.TUTOR_MODEL_NAME).first()
    if version is not None:
        return version
    try:
        with transaction.atomic():
            return ModelVersion.objects.create(
                name=settings.TUTOR_MODEL_NAME,
                base_model=settings.TUTOR_BASE_MODEL,
                adapter_path="",
                status=ModelVersion.Status.ACTIVE,
                notes="The base model, served without an adapter.",
            )
    except IntegrityError:  # created concurrently
        return ModelVersion.objects.get(name=settings.TUTOR_MODEL_NAME)


def _classroom_id(classroom) -> int | None:
    if classroom is None:
        return None
    return classroom if isinstance(classroom, int) else classroom.pk


def active_promotion(classroom=None) -> Promotion | None:
    """The active promotion of one scope: a class, or (None) the global one."""
    class_id = _classroom_id(classroom)
    promotions = Promotion.objects.select_related("version").filter(active=True)
    if class_id is None:
        return promotions.filter(classroom__isnull=True).first()
    return promotions.filter(classroom_id=class_id).first()


def serving_version(classroom=None) -> ModelVersion:
    """The version new sessions of ``classroom`` (a Classroom, its id, or None for free
    practice) are served by: the class's promotion beats the global one; the base otherwise."""
    class_id = _classroom_id(classroom)
    scope = Q(classroom__isnull=True)
    if class_id is not None:
        scope |= Q(classroom_id=class_id)
    promotions = list(Promotion.objects.select_related("version").filter(scope, active=True))
    for promotion in promotions:
        if promotion.classroom_id is not None:
            return promotion.version
    if promotions:
        return promotions[0].version
    return base_version()


def version_by_name(name: str) -> ModelVersion | None:
    if not name:
        return None
    return ModelVersion.objects.filter(name=name).first()


def refresh_statuses() -> None:
    """Versions served somewhere are active; versions that served and no longer do are
    retired. Candidates and failed versions keep their status."""
    serving = set(Promotion.objects.filter(active=True).values_list("version_id", flat=True))
    if active_promotion(None) is None:
        serving.add(base_version().pk)
    ModelVersion.objects.filter(pk__in=serving).exclude(status=ModelVersion.Status.ACTIVE).update(
        status=ModelVersion.Status.ACTIVE
    )
    ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exclude(pk__in=serving).update(
        status=ModelVersion.Status.RETIRED
    )


def adapter_root() -> Path:
    return Path(settings.TUTOR_ADAPTER_DIR)


def max_lora_rank() -> int:
    """The highest LoRA rank the model server loads (its ``--max-lora-rank``)."""
    return settings.TUTOR_MAX_LORA_RANK


def check_adapter_path(path: str | Path) -> str:
    """``path`` as an absolute path inside ``TUTOR_ADAPTER_DIR``; raises
    :class:`inference.adapters.AdapterPathError` for one outside it (``..``, an absolute path
    elsewhere, a symlink that leads out)."""
    return str(adapters.confined_path(path, adapter_root()))


def adapter_problem(version: ModelVersion) -> str | None:
    """Why ``version``'s adapter cannot be served, or None (the base model has none)."""
    if not version.adapter_path:
        return None
    try:
        adapters.validate_adapter(
            version.adapter_path, allowed_root=adapter_root(), max_rank=max_lora_rank()
        )
    except adapters.AdapterError as exc:
        return f"{version.name}'s adapter cannot be served: {exc}"
    return None


def load_version_adapter(version: ModelVersion, base_url: str | None = None, **kwargs: Any) -> bool:
    """Make the model server at ``base_url`` (default ``TUTOR_MODEL_BASE_URL``: every replica
    it lists, at the same time) serve ``version``, with the platform's API key, from inside
    ``TUTOR_ADAPTER_DIR`` only. True when this call loaded it (on any replica); False for the
    base model or an adapter already loaded. With several replicas, those that failed raise
    :class:`inference.adapters.PartialLoad` after the others loaded it: ``exc.report`` names
    them and why (each replica's wait is bounded by ``http_timeout``)."""
    if not version.adapter_path:
        return False
    return adapters.ensure_loaded(
        base_url or settings.TUTOR_MODEL_BASE_URL,
        version.name,
        version.adapter_path,
        api_key=settings.TUTOR_MODEL_API_KEY,
        allowed_root=adapter_root(),
        **kwargs,
    )


def next_version_name() -> str:
    """``tutor-v{n}``, one more than the highest taken."""
    highest = 0
    for name in ModelVersion.objects.filter(name__startswith="tutor-v").values_list(
        "name", flat=True
    ):
        suffix = name.removeprefix("tutor-v")
        if suffix.isdigit():
            highest = max(highest, int(suffix))
    return f"tutor-v{highest + 1}"


# ---- evaluations and the gate -----------------------------------------------------------------


def latest_eval(version: ModelVersion, *, exclude: int | None = None) -> EvalRun | None:
    runs = EvalRun.objects.filter(version=version, status=EvalRun.Status.SUCCEEDED)
    if exclude is not None:
        runs = runs.exclude(pk=exclude)
    return runs.order_by("-finished_at", "-id").first()


def gate_verdict(candidate_run: EvalRun, active_run: EvalRun | None) -> dict[str, Any]:
    """``promotion_gate`` over two evaluation runs, as stored (with what it compared)."""
    from training.evaluation.gate import promotion_gate

    verdict = promotion_gate(candidate_run.report, active_run.report if active_run else None)
    data = verdict.to_dict()
    data["candidate_eval"] = candidate_run.pk
    data["baseline_eval"] = active_run.pk if active_run else None
    data["baseline_version"] = active_run.version.name if active_run else None
    return data


@dataclass
class GateCheck:
    """The gate for promoting ``version`` into one scope, now."""

    passed: bool
    reasons: list[str]
    verdict: dict[str, Any] | None = None
    against: ModelVersion | None = None


def check_gate(version: ModelVersion, classroom=None) -> GateCheck:
    """Is ``version`` promotable over what serves ``classroom`` (None: globally) now?"""
    current = serving_version(classroom)
    if current.pk == version.pk:
        return GateCheck(True, [f"{version.name} already serves here"], None, current)
    candidate = latest_eval(version)
    if candidate is None:
        return GateCheck(
            False,
            [f"{version.name} has no finished evaluation: evaluate it first"],
            None,
            current,
        )
    baseline = latest_eval(current)
    verdict = gate_verdict(candidate, baseline)
    if baseline is None:
        verdict["reasons"] = [
            f"{current.name} (serving now) has no finished evaluation; compared with nothing",
            *verdict["reasons"],
        ]
    return GateCheck(bool(verdict["passed"]), list(verdict["reasons"]), verdict, current)


# ---- promotions -------------------------------------------------------------------------------


class PromotionRefused(Exception):
    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass
class PromotionResult:
    promotions: list[Promotion] = field(default_factory=list)
    checks: list[GateCheck] = field(default_factory=list)


def promote(
    version: ModelVersion, user, classrooms=None, *, override: bool = False
) -> PromotionResult:
    """Serve ``version`` globally (``classrooms`` None) or in each of ``classrooms``.

    Refused (nothing changes) unless the gate passes for every scope, or ``override`` (an
    admin's decision, recorded on the promotion). An adapter that cannot be served (outside
    ``TUTOR_ADAPTER_DIR``, corrupt, of too high a rank) is refused whatever ``override``
    says: promoting it would break the chat of every class it serves."""
    if version.status == ModelVersion.Status.FAILED:
        raise PromotionRefused([f"{version.name} failed; it cannot be promoted"])
    problem = adapter_problem(version)
    if problem is not None:
        raise PromotionRefused([problem])
    scopes = [None] if classrooms is None else list(classrooms)
    if not scopes:
        raise PromotionRefused(["choose at least one class"])
    result = PromotionResult()
    refusals = []
    for scope in scopes:
        check = check_gate(version, scope)
        result.checks.append(check)
        if not check.passed:
            where = f"for {scope}" if scope is not None else "globally"
            refusals += [f"{where}: {reason}" for reason in check.reasons]
    if refusals and not override:
        raise PromotionRefused(refusals)
    with transaction.atomic():
        for scope, check in zip(scopes, result.checks, strict=True):
            current = active_promotion(scope)
            if current is not None and current.version_id == version.pk:
                result.promotions.append(current)  # already promoted there: nothing to do
                continue
            result.promotions.append(
                _activate(version, scope, user, Promotion.Action.PROMOTE, check, override)
            )
        refresh_statuses()
    return result


def _activate(version, classroom, user, action, check: GateCheck | None, override: bool):
    class_id = _classroom_id(classroom)
    scope = Promotion.objects.select_for_update().filter(active=True)
    scope = (
        scope.filter(classroom__isnull=True)
        if class_id is None
        else scope.filter(classroom_id=class_id)
    )
    current = scope.first()
    previous = current
    if current is not None:
        current.active = False
        current.ended_at = timezone.now()
        current.save(update_fields=["active", "ended_at"])
    return Promotion.objects.create(
        version=version,
        classroom_id=class_id,
        promoted_by=user,
        action=action,
        previous=previous,
        active=True,
        gate=check.verdict if check else None,
        override=bool(override and check is not None and not check.passed),
    )


def rollback(classroom, user) -> Promotion | None:
    """End the scope's active promotion and re-activate the one it replaced. Returns the
    re-activated promotion, or None when the scope falls back (a class to the global version,
    global to the base model). Raises ``PromotionRefused`` when nothing is promoted there."""
    class_id = _classroom_id(classroom)
    with transaction.atomic():
        scope = Promotion.objects.select_for_update().filter(active=True)
        scope = (
            scope.filter(classroom__isnull=True)
            if class_id is None
            else scope.filter(classroom_id=class_id)
        )
        current = scope.first()
        if current is None:
            raise PromotionRefused(["nothing is promoted there; nothing to roll back"])
        current.active = False
        current.ended_at = timezone.now()
        current.save(update_fields=["active", "ended_at"])
        restored = None
        target = current.previous
        if target is not None:
            restored = Promotion.objects.create(
                version=target.version,
                classroom_id=class_id,
                promoted_by=user,
                action=Promotion.Action.ROLLBACK,
                # Rolling back again goes one further back.
                previous=target.previous,
                active=True,
                gate=None,
            )
        refresh_statuses()
    return restored


# ---- jobs -------------------------------------------------------------------------------------


def request_cancel(job: TrainingJob) -> TrainingJob:
    """Ask a job to stop. A queued job (or one whose worker is gone) ends at once; a running
    job stops at its next check (the trainer calls ``should_stop`` every step)."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        job.cancel_requested = True
        fields = ["cancel_requested"]
        stale = job.heartbeat_at is None or (
            (timezone.now() - job.heartbeat_at).total_seconds() > settings.TUTOR_JOB_STALE_SECONDS
        )
        if job.status == TrainingJob.Status.QUEUED or stale:
            job.status = TrainingJob.Status.CANCELLED
            job.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        job.save(update_fields=fields)
    return job


TRAINING_TASK = "tutor.retraining.tasks.run_training_job_task"
EVALUATION_TASK = "tutor.retraining.tasks.run_evaluation_task"


def publish_task(name: str, *args: Any) -> Any:
    """Send a Celery task by name (routed by ``CELERY_TASK_ROUTES``): the task modules import
    this one, so it never imports them."""
    return current_app.send_task(name, args=list(args))


def _queue_on_commit(task: str, row, what: str) -> None:
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
            job_id = getattr(row, "training_job_id", None)
            if isinstance(row, EvalRun) and job_id is not None:
                TrainingJob.objects.filter(pk=job_id).update(
                    status=TrainingJob.Status.FAILED,
                    error=f"the evaluation after training failed: {error}",
                    finished_at=timezone.now(),
                )
            return
        model.objects.filter(pk=row.pk).update(celery_task_id=result.id or "")

    transaction.on_commit(publish)


def queue_training_job(job: TrainingJob) -> None:
    """Queue the job's task (after the commit)."""
    _queue_on_commit(TRAINING_TASK, job, "job")


def default_eval_config(**overrides) -> dict[str, Any]:
    """EvaluationConfig fields the platform sets (endpoints and model names are added when the
    run starts)."""
    config: dict[str, Any] = {"limit": settings.TUTOR_EVAL_LIMIT}
    if settings.TUTOR_EVAL_REWARD_MODEL:
        config["reward_model"] = settings.TUTOR_EVAL_REWARD_MODEL
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


def start_evaluation(
    version: ModelVersion, user=None, *, training_job: TrainingJob | None = None, **config
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
