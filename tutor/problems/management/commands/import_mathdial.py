from django.core.management.base import BaseCommand, CommandError

from training.data.mathdial import MathDialFormatError

from ...bank import import_mathdial


class Command(BaseCommand):
    help = "Import problems from a MathDial JSONL file (e.g. ../shared/data/mathdial_test.jsonl)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--limit", type=int, default=None, help="import at most N problems")

    def handle(self, *args, path: str, limit: int | None, **options):
        try:
            result = import_mathdial(path, limit=limit)
        except FileNotFoundError as exc:
            raise CommandError(f"no such file: {path}") from exc
        except MathDialFormatError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"MathDial problems: {result}"))
