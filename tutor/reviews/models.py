from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from tutor.dialogues.models import Message, TutoringSession

RUBRIC_SCORE = [MinValueValidator(1), MaxValueValidator(5)]


class TeacherMove(models.TextChoices):
    """Teacher moves as annotated in MathDial."""

    FOCUS = "focus", "Focus"
    PROBING = "probing", "Probing"
    TELLING = "telling", "Telling"
    GENERIC = "generic", "Generic"


class TurnRating(models.Model):
    """A teacher's rating of one tutor turn: training signal for the pedagogy reward model."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="ratings")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="turn_ratings"
    )
    helpful = models.PositiveSmallIntegerField(validators=RUBRIC_SCORE, null=True, blank=True)
    no_answer_reveal = models.PositiveSmallIntegerField(
        validators=RUBRIC_SCORE, null=True, blank=True
    )
    correct = models.PositiveSmallIntegerField(validators=RUBRIC_SCORE, null=True, blank=True)
    encourages_thinking = models.PositiveSmallIntegerField(
        validators=RUBRIC_SCORE, null=True, blank=True
    )
    teacher_move = models.CharField(max_length=16, choices=TeacherMove.choices, blank=True)
    gave_away_answer = models.BooleanField(default=False)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "rater"], name="one_rating_per_rater"),
        ]

    def __str__(self) -> str:
        return f"rating of message {self.message_id} by {self.rater}"


class Flag(models.Model):
    """Something in a session a teacher should look at. Stays open until resolved."""

    class Kind(models.TextChoices):
        ANSWER_LEAK = "answer_leak", "Tutor revealed the answer"
        BLOCKED_LEAK = "blocked_leak", "Guard blocked a reply that gave the answer"
        FALSE_ARITHMETIC = "false_arithmetic", "Tutor stated false arithmetic"
        PEDAGOGY = "pedagogy", "Judge: reply breaks the pedagogy rules"
        UNSAFE_CONTENT = "unsafe_content", "Unsafe content"
        TEACHER_REPORT = "teacher_report", "Reported by a teacher"

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    session = models.ForeignKey(TutoringSession, on_delete=models.CASCADE, related_name="flags")
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="flags", null=True, blank=True
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    category = models.CharField(max_length=64, blank=True, help_text="e.g. self-harm, violence")
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="resolved_flags",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["session", "resolved_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "kind"],
                condition=models.Q(message__isnull=False),
                name="one_flag_per_message_and_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.severity})"


class JudgeVerdict(models.Model):
    """The LLM judge's verdict (inference/judge.py) on one tutor turn under one rule, stored
    by the post-turn check; teachers see it in review. A turn the judge could not answer for
    has no verdict."""

    class Rule(models.TextChoices):
        LEAK = "leak", "Does not leak the answer"
        PEDAGOGY = "pedagogy", "Follows pedagogical values"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="judge_verdicts")
    rule = models.CharField(max_length=16, choices=Rule.choices)
    passed = models.BooleanField()
    reasons = models.TextField(blank=True)
    judge_model = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message", "rule"]
        constraints = [
            models.UniqueConstraint(fields=["message", "rule"], name="one_verdict_per_rule"),
        ]

    def __str__(self) -> str:
        outcome = "passed" if self.passed else "failed"
        return f"{self.rule} {outcome} on message {self.message_id}"
