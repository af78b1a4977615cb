"""The Celery app. Tasks live in each Django app's ``tasks.py`` and stay thin: they call
``inference/`` and ``training/`` functions and record results in the database."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")

app = Celery("tutor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
