from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    from tutor.accounts.models import User


class ProblemQuerySet(models.QuerySet["Problem"]):
    """Who sees which problem. The bank (no owner) is everyone's; a teacher's own problems are
    theirs alone unless shared, and shared ones are read-only to other teachers. Archived
    problems (``is_active`` off) leave every list but stay on the sessions and assignments that
    already use them."""

    def active(self) -> ProblemQuerySet:
        return self.filter(is_active=True)

    def bank(self) -> ProblemQuerySet:
        return self.filter(owner__isnull=True)

    def public(self) -> ProblemQuerySet:
        """The bank and shared teacher problems: what any teacher may read or assign."""
        return self.filter(Q(owner__isnull=True) | Q(shared=True))

    def free_practice(self) -> ProblemQuerySet:
        """What students may pick without an assignment: active bank and shared problems (a
        teacher's unshared problem reaches students only through that teacher's assignments)."""
        return self.active().public()

    def visible_to(self, user: User) -> ProblemQuerySet:
        """Problems ``user`` may open read-only: every problem for a platform admin; for a
        teacher the public ones and their own (archived included)."""
        if user.is_platform_admin:
            return self.all()
        if not user.is_teacher:
            return self.none()
        return self.filter(Q(owner__isnull=True) | Q(shared=True) | Q(owner=user))

    def editable_by(self, user: User) -> ProblemQuerySet:
        """Problems ``user`` may edit and archive: a teacher's own; a platform admin's, every
        problem."""
        if user.is_platform_admin:
            return self.all()
        if not user.is_teacher:
            return self.none()
        return self.filter(owner=user)

    def assignable(self, teacher: User | None, user: User) -> ProblemQuerySet:
        """Active problems ``user`` may put in an assignment of a class taught by ``teacher``:
        the public ones, the class teacher's own and the user's own (an admin editing a
        teacher's class may use that teacher's problems, never a third teacher's)."""
        owners = {u.pk for u in (teacher, user) if u is not None}
        return self.active().filter(Q(owner__isnull=True) | Q(shared=True) | Q(owner__in=owners))


class Problem(models.Model):
    """A math problem the tutor can teach, with the answer the student must reach."""

    class Source(models.TextChoices):
        STARTER = "starter", "Starter bank"
        MATHDIAL = "mathdial", "MathDial"
        CUSTOM = "custom", "Written by a teacher"

    title = models.CharField(max_length=200)
    text = models.TextField()
    final_answer = models.CharField(max_length=200, help_text="Checked with math-verify.")
    solution = models.TextField(help_text="Worked solution; the tutor sees it, students never.")
    skills = models.JSONField(default=list, blank=True)
    difficulty = models.PositiveSmallIntegerField(default=2, help_text="1 (easy) to 5 (hard)")
    require_simplest_form = models.BooleanField(
        default=False,
        help_text="Only a fraction in lowest terms counts (6/8 is right in value, not in form).",
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CUSTOM)
    source_id = models.CharField(max_length=64, blank=True)
    # Source-specific extras (e.g. MathDial's student profile and incorrect first solution,
    # which simulated students use during training and evaluation).
    metadata = models.JSONField(default=dict, blank=True)
    # The teacher who wrote it; none for the bank (starter problems, MathDial, the Django admin).
    # PROTECT: deleting a teacher must not silently drop problems that sessions refer to.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="problems",
    )
    shared = models.BooleanField(
        default=False,
        help_text="Other teachers may read it and use it in their assignments; students may "
        "pick it for free practice.",
    )
    # Off: archived. It leaves every list but stays on old sessions and assignments.
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProblemQuerySet.as_manager()

    class Meta:
        ordering = ["difficulty", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id"],
                condition=~models.Q(source_id=""),
                name="unique_problem_per_source_id",
            ),
            models.CheckConstraint(
                condition=models.Q(difficulty__gte=1, difficulty__lte=5),
                name="problem_difficulty_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ProblemCalibration(models.Model):
    """How often a simulated student solved a problem alone, before any dialogue
    (``training.calibration``): ``k`` samples, graded. Training draws from the problems whose
    rate lies in an informative band. ``solve_rate`` is null when the model server failed: the
    problem is uncalibrated, not unsolvable."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="calibrations")
    student_model = models.CharField(max_length=200, help_text="Served name of the student.")
    calculator = models.BooleanField(default=False)
    k = models.PositiveSmallIntegerField()
    solve_rate = models.FloatField(null=True, blank=True)
    answers = models.JSONField(default=list, blank=True)  # the k final answers, as read
    error = models.CharField(max_length=500, blank=True)
    measured_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["problem_id", "student_model", "calculator", "k"]
        constraints = [
            models.UniqueConstraint(
                fields=["problem", "student_model", "calculator", "k"],
                name="unique_calibration_per_problem_student_k",
            ),
            models.CheckConstraint(
                condition=models.Q(solve_rate__isnull=True)
                | models.Q(solve_rate__gte=0.0, solve_rate__lte=1.0),
                name="calibration_rate_0_to_1",
            ),
        ]

    def __str__(self) -> str:
        rate = "–" if self.solve_rate is None else f"{self.solve_rate:.2f}"
        return f"{self.problem_id} · {self.student_model} · k={self.k}: {rate}"
