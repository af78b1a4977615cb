from django.apps import AppConfig
from django.conf import settings


class DialoguesConfig(AppConfig):
    name = "tutor.dialogues"
    label = "dialogues"
    verbose_name = "Tutoring sessions"

    def ready(self) -> None:
        from pedagogy import bounded

        # The limits of answer and leak checks in this process (web or worker); the pool of
        # checking processes itself starts on first use, or with the web server (asgi.py).
        bounded.configure(
            timeout=settings.TUTOR_CHECK_TIMEOUT_SECONDS, workers=settings.TUTOR_CHECK_WORKERS
        )
