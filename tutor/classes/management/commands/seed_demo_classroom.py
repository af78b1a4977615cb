"""``manage.py seed_demo_classroom``: the demo teacher's class with a few weeks of history
(tutor/demo). Running it again changes nothing."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from training.data.mathdial import MathDialFormatError
from tutor.demo.seed import SEED, DemoSeedError, seed_demo_classroom
from tutor.demo.source import mathdial_path


class Command(BaseCommand):
    help = (
        "Create the demo class of the demo teacher (teacher) with the demo students and about "
        "20 simulated ones, and three weeks of history built from MathDial's dialogues. Does "
        "nothing when the class exists."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--mathdial",
            type=Path,
            default=None,
            help=f"a MathDial JSONL file (default: {mathdial_path()})",
        )
        parser.add_argument("--seed", type=int, default=SEED, help="the random seed")

    def handle(self, *args, mathdial: Path | None, seed: int, **options):
        try:
            result = seed_demo_classroom(seed=seed, mathdial=mathdial)
        except FileNotFoundError as exc:
            raise CommandError(
                f"no MathDial file at {exc.filename or mathdial or mathdial_path()}: the demo "
                "class is built from it (set TUTOR_SHARED_DATA, or skip the class with "
                "--no-classroom on seed_demo)"
            ) from exc
        except (DemoSeedError, MathDialFormatError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(result))
