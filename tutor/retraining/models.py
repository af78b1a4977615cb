"""Retraining: jobs that fine-tune the tutor from the logs, the model versions they produce,
their evaluations, and which version serves which classes (docs/retraining.md)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from inference.adapter_errors import AdapterPathError
from inference.adapter_files import confined_path


def validate_adapter_path(value: str) -> None:
    """A version's adapter folder must lie inside ``TUTOR_ADAPTER_DIR`` (blank: the base
    model). Forms (the Django admin) run this; ``tutor.retraining.services`` checks it again
    wherever a version is registered, promoted or loaded."""
    if not value:
        return
    try:
        confined_path(value, settings.TUTOR_ADAPTER_DIR)
    except AdapterPathError as exc:
        raise ValidationError(str(exc), code="adapter_path") from exc


class ModelVersion(models.Model):
    """A tutor vLLM can serve: the base model, or a LoRA adapter on it served under ``name``.

    ``status`` follows the promotions: ``active`` while some promotion serves it (the base is
    active while nothing is promoted globally), ``retired`` once it served and no longer does.
    """

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        FAILED = "failed", "Failed"

    # The name vLLM serves it under (the base's --served-model-name, an adapter's lora_name).
    name = models.CharField(max_length=200, unique=True)
    # The base weights: a folder or hub id (what the trainer loads), e.g. "default".
    base_model = models.CharField(max_length=500)
    # The LoRA folder on the model server's machine, inside TUTOR_ADAPTER_DIR; blank for the
    # base model itself.
    adapter_path = models.CharField(max_length=1000, blank=True, validators=[validate_adapter_path])
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    metrics = models.JSONField(default=dict, blank=True)  # training metrics
    notes = models.TextField(blank=True)
    training_job = models.ForeignKey(
        "TrainingJob",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="versions",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_base(self) -> bool:
        return not self.adapter_path


class Promotion(models.Model):
    """Serves ``version`` in ``classroom`` (``classroom`` null: everywhere). At most one
    promotion per scope is active; promoting ends the active one and remembers it as
    ``previous``, so a rollback re-activates ``previous``."""

    class Action(models.TextChoices):
        PROMOTE = "promote", "Promoted"
        ROLLBACK = "rollback", "Rolled back"

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotions")
    classroom = models.ForeignKey(
        "classes.Classroom",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="model_promotions",
    )
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="model_promotions",
    )
    action = models.CharField(max_length=16, choices=Action.choices, default=Action.PROMOTE)
    previous = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    active = models.BooleanField(default=True)
    # The promotion gate's verdict at the time (training.evaluation.gate), and whether an
    # admin promoted over a failed gate.
    gate = models.JSONField(null=True, blank=True)
    override = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["classroom"],
                condition=models.Q(active=True, classroom__isnull=False),
                name="one_active_promotion_per_class",
            ),
            models.UniqueConstraint(
                fields=["active"],
                condition=models.Q(active=True, classroom__isnull=True),
                name="one_active_global_promotion",
            ),
        ]

    def __str__(self) -> str:
        where = self.classroom or "everywhere"
        return f"{self.version} in {where}"


def progress_percent(succeeded: bool, done: int, total: int) -> int:
    """What a progress bar shows: 100 once succeeded, else done/total, capped."""
    if succeeded:
        return 100
    if not total:
        return 0
    return min(100, round(100 * done / total))


class TrainingJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="training_jobs",
    )
    base_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="training_jobs"
    )
    # training.jobs.TrainJobConfig.to_dict()
    config = models.JSONField(default=dict)
    # The data window: sessions of these classes (none: every session) between the dates.
    classrooms = models.ManyToManyField(
        "classes.Classroom", blank=True, related_name="training_jobs"
    )
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    include_problem_bank = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)  # the latest step's
    history = models.JSONField(default=list, blank=True)  # [{"step": n, metric: value, ...}]
    # Stages before the steps, by name ("reward_model"): {"status", "done", "total", figures}
    stages = models.JSONField(default=dict, blank=True)
    checkpoint_path = models.CharField(max_length=1000, blank=True)
    log = models.TextField(blank=True)  # newest kept, capped (tutor.retraining.runner)
    workdir = models.CharField(max_length=1000, blank=True)
    dataset_path = models.CharField(max_length=1000, blank=True)
    dataset_stats = models.JSONField(default=dict, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)  # deliveries that ran it
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    result_version = models.ForeignKey(
        ModelVersion,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="produced_by",
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"training job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        return progress_percent(self.status == self.Status.SUCCEEDED, self.step, self.total_steps)


class EvalRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="eval_runs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="eval_runs",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    config = models.JSONField(default=dict, blank=True)  # EvaluationConfig overrides
    report = models.JSONField(null=True, blank=True)  # training.evaluation.run_evaluation
    headline = models.JSONField(null=True, blank=True)  # {metric: {value, ci_low, ci_high, n}}
    # promotion_gate(this report, the active global version's latest report).to_dict(), plus
    # which run it was compared with.
    gate = models.JSONField(null=True, blank=True)
    baseline = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    current_task = models.CharField(max_length=64, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    # Why it failed; while it waits to be retried (the model server was unreachable), why and
    # when, with status back to queued.
    error = models.TextField(blank=True)
    # Set on the evaluation that follows a training job: if it fails, the job fails with it.
    training_job = models.ForeignKey(
        TrainingJob,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="evaluations",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"evaluation {self.pk} of {self.version}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        return progress_percent(self.status == self.Status.SUCCEEDED, self.done, self.total)
