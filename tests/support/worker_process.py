"""A Celery worker in an OS process of its own, on the test settings: the test Redis database
and prefix, and the test database (shared with the test only when it runs with
``transaction=True``: rows the test writes are committed). Tests that kill a worker use the
prefork pool, whose child runs the task."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_database_url() -> str:
    """``DATABASE_URL`` for pytest-django's test database, as this process uses it now."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    auth = quote(database["USER"] or "", safe="")
    if database["PASSWORD"]:
        auth += ":" + quote(database["PASSWORD"], safe="")
    host = f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
    return f"postgres://{auth}{'@' if auth else ''}{host}/{quote(database['NAME'], safe='')}"


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class WorkerProcess:
    """``celery -A tutor worker -Q queues`` with ``pool`` ("solo", or "prefork" with one
    child), importing the ``include`` modules besides the app's tasks, with ``env`` over the
    test settings."""

    def __init__(
        self,
        queues: Sequence[str],
        log_path: Path,
        *,
        include: Sequence[str] = (),
        pool: str = "solo",
        env: Mapping[str, str] | None = None,
    ):
        from django.conf import settings

        self.log_path = log_path
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": shared_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CHANNELS_PREFIX": settings.TEST_REDIS_PREFIX,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        command = [
            sys.executable, "-m", "celery", "-A", "tutor", "worker",
            "-Q", ",".join(queues), "-n", f"tests-{uuid.uuid4().hex[:8]}@%h",
            "-P", pool, "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel=INFO",
        ]  # fmt: skip
        if pool == "prefork":
            command += ["--concurrency", "1"]
        if include:
            command += ["-I", ",".join(include)]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"the worker process exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            if " ready." in self.log_tail(chars=1_000_000):
                return
            time.sleep(0.1)
        pytest.fail(f"the worker process was not ready in {seconds:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # a warm shutdown: the task at hand ends first
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for child in children(self.process.pid):  # a prefork child left behind
            try:
                os.kill(child, 9)
            except ProcessLookupError:
                pass
