from django.contrib import admin

from .models import Flag, TurnRating


@admin.register(TurnRating)
class TurnRatingAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "message",
        "rater",
        "helpful",
        "no_answer_reveal",
        "correct",
        "encourages_thinking",
        "teacher_move",
        "gave_away_answer",
        "updated_at",
    )
    list_filter = ("teacher_move", "gave_away_answer")
    raw_id_fields = ("message", "rater")


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "severity", "category", "session", "created_at", "resolved_at")
    list_filter = ("kind", "severity", ("resolved_at", admin.EmptyFieldListFilter))
    raw_id_fields = ("session", "message", "resolved_by")
    search_fields = ("detail", "category")
