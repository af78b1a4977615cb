from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    STUDENT = "student", "Student"
    TEACHER = "teacher", "Teacher"
    ADMIN = "admin", "Admin"


class User(AbstractUser):
    """A platform user. Every user has exactly one role; permissions follow from it."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    # Set on accounts whose password someone else chose (a teacher's roster import): until the
    # user picks their own, every page sends them to the password change page
    # (tutor/accounts/middleware.py).
    must_change_password = models.BooleanField(default=False)

    @property
    def is_student(self) -> bool:
        return self.role == Role.STUDENT

    @property
    def is_teacher(self) -> bool:
        return self.role == Role.TEACHER

    @property
    def is_platform_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser

    def __str__(self) -> str:
        return self.get_full_name() or self.username
