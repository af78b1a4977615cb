from django.contrib import admin

from .models import Problem, ProblemCalibration


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ("title", "difficulty", "source", "owner", "shared", "final_answer", "is_active")
    list_filter = ("source", "difficulty", "shared", "is_active")
    search_fields = ("title", "text", "owner__username")
    raw_id_fields = ("owner",)


@admin.register(ProblemCalibration)
class ProblemCalibrationAdmin(admin.ModelAdmin):
    """Read-only: rows come from ``manage.py calibrate_problems``, never from hand edits."""

    list_display = ("problem", "student_model", "calculator", "k", "solve_rate", "measured_at")
    list_filter = ("student_model", "calculator", "k")
    search_fields = ("problem__title",)
    list_select_related = ("problem",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
