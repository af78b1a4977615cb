"""Demo accounts and problems for a first look at the platform."""

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand

from ...models import Role, User

DEMO_USERS = [
    ("student", "Sam", "Student", Role.STUDENT),
    ("student2", "Alex", "Learner", Role.STUDENT),
    ("teacher", "Terry", "Teacher", Role.TEACHER),
    ("admin", "Ada", "Admin", Role.ADMIN),
]


class Command(BaseCommand):
    help = "Create demo accounts (student, student2, teacher, admin) and load the starter problems."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=os.environ.get("TUTOR_DEMO_PASSWORD", "tutor-demo"),
            help="password for every demo account (default: $TUTOR_DEMO_PASSWORD or tutor-demo)",
        )

    def handle(self, *args, password: str, **options):
        for username, first, last, role in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last, "role": role}
            )
            if created:
                user.set_password(password)
                if role == Role.ADMIN:
                    user.is_staff = True
                    user.is_superuser = True
                user.save()
            self.stdout.write(f"{'created' if created else 'exists '} {role:8} {username}")
        call_command("load_starter_problems", stdout=self.stdout)
