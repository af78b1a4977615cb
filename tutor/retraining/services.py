"""Model versions and promotions, as plain synchronous functions.

Which version serves a session: the class's active promotion, else the global one, else the
base model (:func:`serving_version`). Promoting ends the scope's active promotion and
remembers it; rolling back re-activates the one before.

A version's adapter folder must lie inside ``TUTOR_ADAPTER_DIR`` (:func:`check_adapter_path`)
to be registered, promoted or loaded, and must hold an adapter vLLM can load
(:func:`adapter_problem`: its config, its rank against the server's ``--max-lora-rank``, an
intact safetensors file) to be promoted: a broken adapter is refused before it can serve.

Training jobs and evaluation runs change state in :mod:`tutor.retraining.jobs`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from inference import adapters
from training.evaluation.gate import promotion_gate
from training.jobs import TrainResult

from .jobs import clean_metrics
from .models import EvalRun, ModelVersion, Promotion, TrainingJob

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


def _in_scope(promotions: QuerySet[Promotion], class_id: int | None) -> QuerySet[Promotion]:
    """The active ones of ``promotions`` in one scope: a class, or (None) the global one."""
    promotions = promotions.filter(active=True)
    if class_id is None:
        return promotions.filter(classroom__isnull=True)
    return promotions.filter(classroom_id=class_id)


def active_promotion(classroom=None) -> Promotion | None:
    """The active promotion of one scope: a class, or (None) the global one."""
    return _in_scope(Promotion.objects.select_related("version"), _classroom_id(classroom)).first()


def _end_active(class_id: int | None) -> Promotion | None:
    """End the scope's active promotion (locked until the commit), if any; returns it."""
    current = _in_scope(Promotion.objects.select_for_update(), class_id).first()
    if current is not None:
        current.active = False
        current.ended_at = timezone.now()
        current.save(update_fields=["active", "ended_at"])
    return current


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


def preload_for_promotion(version: ModelVersion) -> str | None:
    """Load ``version``'s adapter on every model server replica before it is promoted.

    Raises :class:`PromotionRefused` when a server read the adapter and refused it (wrong
    shapes, a rank above its ``--max-lora-rank``, a corrupt file that passed the file checks):
    promoting it would break the chat of every class it serves. A replica that is down or slow
    does not stop the promotion (the chat loads the adapter on first use there): the returned
    note says so, and None means every replica serves it now."""
    if not version.adapter_path:
        return None
    try:
        load_version_adapter(version, http_timeout=adapters.httpx.Timeout(60.0, connect=2.0))
    except adapters.PartialLoad as exc:
        report = exc.report
        rejected = {
            u: e for u, e in report.failed.items() if isinstance(e, adapters.AdapterRejected)
        }
        if rejected:
            raise PromotionRefused(
                [f"vLLM refused {version.name}'s adapter: {e}" for e in rejected.values()]
            ) from exc
        failed = "; ".join(f"{url} ({error})" for url, error in report.failed.items())
        return (
            f"{version.name} is loaded on {len(report.serving)} of {report.replicas} vLLM "
            f"replicas; not on {failed}. Those load it when a session first asks for it."
        )
    except adapters.AdapterRejected as exc:
        raise PromotionRefused([f"vLLM refused {version.name}'s adapter: {exc}"]) from exc
    except adapters.AdapterError as exc:
        return f"vLLM did not load {version.name} now ({exc}); the chat retries on use."
    return None


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


def register_version(job: TrainingJob, result: TrainResult) -> ModelVersion:
    """The job's adapter as a candidate version, its folder copied into ``TUTOR_ADAPTER_DIR``
    (once: a redelivered job finds it)."""
    existing = ModelVersion.objects.filter(training_job=job).first()
    if existing is not None:
        return existing
    base = job.base_version
    for _ in range(20):
        name = next_version_name()
        target = Path(check_adapter_path(name))  # inside TUTOR_ADAPTER_DIR
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


# ---- evaluations and the gate -----------------------------------------------------------------


def latest_eval(version: ModelVersion, *, exclude: int | None = None) -> EvalRun | None:
    runs = EvalRun.objects.filter(version=version, status=EvalRun.Status.SUCCEEDED)
    if exclude is not None:
        runs = runs.exclude(pk=exclude)
    return runs.order_by("-finished_at", "-id").first()


def gate_verdict(candidate_run: EvalRun, active_run: EvalRun | None) -> dict[str, Any]:
    """``promotion_gate`` over two evaluation runs, as stored (with what it compared)."""
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


def check_promotion(
    version: ModelVersion, classrooms=None, *, override: bool = False
) -> list[GateCheck]:
    """The gate's check for each scope (globally when ``classrooms`` is None); raises
    :class:`PromotionRefused` when ``version`` cannot be promoted there (see :func:`promote`)."""
    if version.status == ModelVersion.Status.FAILED:
        raise PromotionRefused([f"{version.name} failed; it cannot be promoted"])
    problem = adapter_problem(version)
    if problem is not None:
        raise PromotionRefused([problem])
    scopes = [None] if classrooms is None else list(classrooms)
    if not scopes:
        raise PromotionRefused(["choose at least one class"])
    checks, refusals = [], []
    for scope in scopes:
        check = check_gate(version, scope)
        checks.append(check)
        if not check.passed:
            where = f"for {scope}" if scope is not None else "globally"
            refusals += [f"{where}: {reason}" for reason in check.reasons]
    if refusals and not override:
        raise PromotionRefused(refusals)
    return checks


def promote(
    version: ModelVersion, user, classrooms=None, *, override: bool = False
) -> PromotionResult:
    """Serve ``version`` globally (``classrooms`` None) or in each of ``classrooms``.

    Refused (nothing changes) unless the gate passes for every scope, or ``override`` (an
    admin's decision, recorded on the promotion). An adapter that cannot be served (outside
    ``TUTOR_ADAPTER_DIR``, corrupt, of too high a rank) is refused whatever ``override``
    says: promoting it would break the chat of every class it serves."""
    scopes = [None] if classrooms is None else list(classrooms)
    result = PromotionResult(checks=check_promotion(version, classrooms, override=override))
    with transaction.atomic():
        for scope, check in zip(scopes, result.checks, strict=True):
            current = active_promotion(scope)
            if current is not None and current.version_id == version.pk:
                result.promotions.append(current)  # already promoted there: nothing to do
                continue
            result.promotions.append(_activate(version, scope, user, check, override))
        refresh_statuses()
    return result


def _activate(version, classroom, user, check: GateCheck, override: bool) -> Promotion:
    """Promote ``version`` in one scope, after the promotion it ends there (if any)."""
    class_id = _classroom_id(classroom)
    previous = _end_active(class_id)
    return Promotion.objects.create(
        version=version,
        classroom_id=class_id,
        promoted_by=user,
        action=Promotion.Action.PROMOTE,
        previous=previous,
        active=True,
        gate=check.verdict,
        override=bool(override and not check.passed),
    )


def rollback(classroom, user) -> Promotion | None:
    """End the scope's active promotion and re-activate the one it replaced. Returns the
    re-activated promotion, or None when the scope falls back (a class to the global version,
    global to the base model). Raises ``PromotionRefused`` when nothing is promoted there."""
    class_id = _classroom_id(classroom)
    with transaction.atomic():
        current = _end_active(class_id)
        if current is None:
            raise PromotionRefused(["nothing is promoted there; nothing to roll back"])
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
