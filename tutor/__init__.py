"""The Django project: accounts, problems, dialogues and the Celery app."""

from .celery import app as celery_app

__all__ = ["celery_app"]
