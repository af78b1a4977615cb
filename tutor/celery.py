"""The Celery app. Tasks live in each Django app's ``tasks.py`` and stay thin: they call
``inference/`` and ``training/`` functions and record results in the database."""

import multiprocessing
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")

app = Celery("tutor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def allow_child_processes(**_: object) -> None:
    """Let a prefork pool's child start processes of its own.

    The child that runs a task is a daemonic process, and Python refuses to start a process
    from a daemonic one. Answer, leak and reward checks run in a pool of processes with hard
    time limits (:mod:`pedagogy.bounded`), in the web server and in tasks alike: without this,
    every real training job failed at its first reward in the default (prefork) worker, and a
    post-turn check that needed the pool failed too. The checking processes are daemonic
    themselves, so they still end with the child."""
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    config["daemon"] = False
    # The checking pool's forkserver pickles the key of the process that starts it, and
    # billiard's key type (the pool child's) refuses to be pickled: the standard library's.
    key = config.get("authkey")
    if key is not None:
        config["authkey"] = multiprocessing.process.AuthenticationString(bytes(key))
