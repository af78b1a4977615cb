from django.db import models


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
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CUSTOM)
    source_id = models.CharField(max_length=64, blank=True)
    # Source-specific extras (e.g. MathDial's student profile and incorrect first solution,
    # which simulated students use during training and evaluation).
    metadata = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

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
