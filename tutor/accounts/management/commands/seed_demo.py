"""Demo accounts and problems for a first look at the platform."""

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from environs import Env, EnvError

from tutor.demo.evaluation import queue_base_evaluation

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
        parser.add_argument(
            "--no-classroom",
            action="store_true",
            help="skip the demo class and its history (also: TUTOR_DEMO_CLASSROOM=0)",
        )
        parser.add_argument(
            "--evaluate-base",
            action="store_true",
            help="queue an evaluation of the base version when it has none (scripts/start.sh)",
        )

    def handle(
        self, *args, password: str, no_classroom: bool, evaluate_base: bool, **options
    ) -> None:
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
        if no_classroom or not classroom_wanted():
            self.stdout.write("skipped  the demo class (--no-classroom or TUTOR_DEMO_CLASSROOM=0)")
        else:
            call_command("seed_demo_classroom", stdout=self.stdout)
        if evaluate_base:
            run = queue_base_evaluation()
            if run is None:
                self.stdout.write("exists   an evaluation of the base version")
            else:
                self.stdout.write(f"queued   evaluation {run.pk} of {run.version.name}")


def classroom_wanted() -> bool:
    """``TUTOR_DEMO_CLASSROOM`` (default on), read like every other boolean setting."""
    try:
        return Env().bool("TUTOR_DEMO_CLASSROOM", True)
    except EnvError as exc:
        raise CommandError(f"TUTOR_DEMO_CLASSROOM: {exc}") from exc
