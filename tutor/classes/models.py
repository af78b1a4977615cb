import secrets

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models

from tutor.problems.models import Problem

# No look-alike characters (0/O, 1/I/L) so codes survive being read aloud or copied by hand.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8

# A class's or an assignment's pedagogy instructions go into every tutor prompt of its sessions,
# which gives them at most a share of its character budget (inference.prompts): keep each text
# short enough that a class's and an assignment's together fit.
PEDAGOGY_INSTRUCTIONS_MAX_CHARS = 1000
validate_instructions_length = MaxLengthValidator(
    PEDAGOGY_INSTRUCTIONS_MAX_CHARS,
    message=(
        "Keep the pedagogy instructions to at most %(limit_value)d characters (they have "
        "%(show_value)d): the tutor reads only so much of them."
    ),
)


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


class Classroom(models.Model):
    """A teacher's class. Students join with the join code or are added by the teacher."""

    name = models.CharField(max_length=120)
    teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="classrooms_taught"
    )
    join_code = models.CharField(max_length=16, unique=True, default=new_join_code)
    # Plain-words instructions added to the tutor's system prompt for this class's sessions.
    pedagogy_instructions = models.TextField(
        blank=True,
        max_length=PEDAGOGY_INSTRUCTIONS_MAX_CHARS,
        validators=[validate_instructions_length],
    )
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    students = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Enrollment", related_name="classrooms"
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Enrollment(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="enrollments")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments"
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["classroom", "student"], name="unique_enrollment")
        ]

    def __str__(self) -> str:
        return f"{self.student} in {self.classroom}"


class Assignment(models.Model):
    """Problems from the bank set for a class, with a due date and optional instructions."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="assignments")
    title = models.CharField(max_length=200)
    problems = models.ManyToManyField(Problem, related_name="assignments")
    due_at = models.DateTimeField(null=True, blank=True)
    pedagogy_instructions = models.TextField(
        blank=True,
        max_length=PEDAGOGY_INSTRUCTIONS_MAX_CHARS,
        validators=[validate_instructions_length],
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at", "id"]

    def __str__(self) -> str:
        return self.title
