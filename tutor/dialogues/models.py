from django.conf import settings
from django.db import models

from tutor.problems.models import Problem


class TutoringSession(models.Model):
    """One student working on one problem with the tutor."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class Outcome(models.TextChoices):
        PENDING = "pending", "No answer yet"
        INCORRECT = "incorrect", "Answered, not yet correct"
        SOLVED = "solved", "Solved"

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tutoring_sessions"
    )
    problem = models.ForeignKey(Problem, on_delete=models.PROTECT, related_name="sessions")
    # Set when the session was opened from an assignment; free practice has neither.
    classroom = models.ForeignKey(
        "classes.Classroom",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
    )
    assignment = models.ForeignKey(
        "classes.Assignment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
    )
    # The model (or LoRA adapter) name the tutor was served under when the session began.
    model_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    solved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["student", "-created_at"]),
            models.Index(fields=["classroom", "student"]),
        ]

    def __str__(self) -> str:
        return f"{self.student} on {self.problem}"


class GuardOutcome(models.TextChoices):
    PASSED = "passed", "Passed the guard"
    RETRIED = "retried", "Passed after the model was asked again"
    FALLBACK = "fallback", "Replaced by the safe fallback"


class Message(models.Model):
    """A turn in a tutoring session.

    Tutor messages are written once, when the reply ends (or is stopped, or fails): ``partial``
    marks a reply that did not finish. ``thinking`` holds hidden ``<think>`` text, which only
    teachers may see.
    """

    class Role(models.TextChoices):
        STUDENT = "student", "Student"
        TUTOR = "tutor", "Tutor"

    session = models.ForeignKey(TutoringSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    thinking = models.TextField(blank=True)
    client_id = models.UUIDField(null=True, blank=True)
    partial = models.BooleanField(default=False)
    finish_reason = models.CharField(max_length=32, blank=True)
    error = models.CharField(max_length=300, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    # The registered version that wrote a tutor message (model_name keeps the served name).
    model_version = models.ForeignKey(
        "retraining.ModelVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Set by the post-turn check (a Celery task): the tutor stated the final answer before the
    # student did. None until checked.
    leaked_answer = models.BooleanField(null=True, blank=True)
    # How the answer guard let this reply through: as the model wrote it, after asking again,
    # or as the safe fallback (its blocked attempts are ``blocked_replies``).
    guard = models.CharField(max_length=16, choices=GuardOutcome.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["session", "created_at", "id"])]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "client_id"], name="unique_client_id_per_session"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class BlockedReply(models.Model):
    """A reply attempt the answer guard stopped before the student saw what it blocked.

    The guard (``pedagogy.guard``, run by ``inference.reply_stream``) ends an attempt that would
    state the final answer or false arithmetic and asks the model again; the student sees only
    the tutor message the last attempt (or the fallback) became. The raw attempt is kept for
    teachers (review) and for training (a negative example in the export).
    """

    class Reason(models.TextChoices):
        ANSWER_LEAK = "answer_leak", "Stated the final answer"
        FALSE_ARITHMETIC = "false_arithmetic", "Stated false arithmetic"
        UNCHECKABLE = "uncheckable", "Could not be checked in time"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="blocked_replies")
    attempt = models.PositiveSmallIntegerField(help_text="1 for the first attempt, and so on")
    text = models.TextField(help_text="What the model wrote, up to where the guard stopped it")
    thinking = models.TextField(blank=True)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True, help_text="The value or claim found")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message", "attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "attempt"], name="one_blocked_reply_per_attempt"
            )
        ]

    def __str__(self) -> str:
        return f"blocked attempt {self.attempt} of message {self.message_id} ({self.reason})"


class AnswerAttempt(models.Model):
    """A final answer the student submitted, checked against the problem's answer."""

    session = models.ForeignKey(TutoringSession, on_delete=models.CASCADE, related_name="attempts")
    answer = models.CharField(max_length=300)
    correct = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.answer} ({'correct' if self.correct else 'incorrect'})"


class ReplyRating(models.Model):
    """A student's thumbs up or down on one tutor reply of their own session, with an optional
    reason. One per student and reply; rating again changes it. Shown to teachers in review,
    exported for retraining, and used beside teachers' ratings by the reward model's pairs."""

    REASON_MAX_CHARS = 300

    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reply_ratings"
    )
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="student_ratings")
    helpful = models.BooleanField()
    reason = models.CharField(max_length=REASON_MAX_CHARS, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["student", "message"], name="one_reply_rating_per_student"
            )
        ]

    def __str__(self) -> str:
        verdict = "helpful" if self.helpful else "not helpful"
        return f"{self.student} on message {self.message_id}: {verdict}"
