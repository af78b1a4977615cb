from django.core.management.base import BaseCommand

from ...bank import load_starter_bank


class Command(BaseCommand):
    help = "Load (or refresh) the platform's own starter problem bank."

    def handle(self, *args, **options):
        result = load_starter_bank()
        self.stdout.write(self.style.SUCCESS(f"Starter problems: {result}"))
