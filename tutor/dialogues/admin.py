from django.contrib import admin

from .models import AnswerAttempt, Message, TutoringSession


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("role", "text", "thinking", "partial", "completion_tokens", "time_to_first_token_ms")
    readonly_fields = fields


class AnswerAttemptInline(admin.TabularInline):
    model = AnswerAttempt
    extra = 0
    readonly_fields = ("answer", "correct", "created_at")


@admin.register(TutoringSession)
class TutoringSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "student", "problem", "status", "outcome", "model_name", "created_at")
    list_filter = ("status", "outcome")
    inlines = [MessageInline, AnswerAttemptInline]
