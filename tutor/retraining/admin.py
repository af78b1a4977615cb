from django.contrib import admin

from .models import EvalRun, ModelVersion, Promotion, TrainingJob


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "base_model", "adapter_path", "parent", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    readonly_fields = ("created_at",)


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "classroom",
        "action",
        "active",
        "override",
        "promoted_by",
        "created_at",
        "ended_at",
    )
    list_filter = ("active", "action", "override")
    readonly_fields = ("created_at",)


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "progress",
        "base_version",
        "result_version",
        "created_by",
        "created_at",
        "heartbeat_at",
    )
    list_filter = ("status",)
    readonly_fields = ("created_at", "started_at", "finished_at", "heartbeat_at", "log")
    filter_horizontal = ("classrooms",)

    @admin.display(description="progress")
    def progress(self, job: TrainingJob) -> str:
        return f"{job.step}/{job.total_steps} ({job.percent}%)"


@admin.register(EvalRun)
class EvalRunAdmin(admin.ModelAdmin):
    list_display = ("id", "version", "status", "progress", "gate_passed", "created_at")
    list_filter = ("status",)
    readonly_fields = ("created_at", "started_at", "finished_at", "heartbeat_at")

    @admin.display(description="progress")
    def progress(self, run: EvalRun) -> str:
        return f"{run.done}/{run.total} ({run.percent}%)"

    @admin.display(description="gate", boolean=True)
    def gate_passed(self, run: EvalRun) -> bool | None:
        return None if not run.gate else bool(run.gate.get("passed"))
