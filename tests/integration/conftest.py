import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import purge_queues
from tests.support.scripted_model_server import ScriptedModelServer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def student(make_user):
    return make_user("stu")


@pytest.fixture
def tutoring_session(student, problem):
    """A session of ``student`` on ``problem``, in no classroom."""
    from tutor.dialogues.models import TutoringSession

    return TutoringSession.objects.create(student=student, problem=problem)


@pytest.fixture
def model_server(settings):
    with ScriptedModelServer() as server:
        settings.TUTOR_MODEL_BASE_URL = server.base_url
        settings.TUTOR_MODEL_READ_TIMEOUT = 10
        yield server


def shared_database_url() -> str:
    """``DATABASE_URL`` for pytest-django's test database, as this process uses it now."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    auth = quote(database["USER"] or "", safe="")
    if database["PASSWORD"]:
        auth += ":" + quote(database["PASSWORD"], safe="")
    host = f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
    return f"postgres://{auth}{'@' if auth else ''}{host}/{quote(database['NAME'], safe='')}"


class WorkerProcess:
    """``celery -A tutor worker`` in an OS process of its own, on the test settings: the test
    Redis database and prefix, and the test database (shared with the test only when it runs
    with ``transaction=True``: rows the test writes are committed)."""

    def __init__(self, queues: list[str], include: list[str], log_path: Path):
        from django.conf import settings

        self.log_path = log_path
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": shared_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CHANNELS_PREFIX": settings.TEST_REDIS_PREFIX,
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            sys.executable, "-m", "celery", "-A", "tutor", "worker",
            "-Q", ",".join(queues), "-n", f"tests-{uuid.uuid4().hex[:8]}@%h",
            "-P", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel=INFO",
        ]  # fmt: skip
        if include:
            command += ["-I", ",".join(include)]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"the worker process exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            if " ready." in self.log_path.read_text(errors="replace"):
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


@pytest.fixture
def worker_process(transactional_db, tmp_path):
    """Start a Celery worker process on ``queues`` (purged first), importing the ``include``
    modules besides the app's tasks; it is stopped at the end of the test, before the test
    database is emptied."""
    started: list[WorkerProcess] = []

    def start(*queues: str, include: tuple[str, ...] = ()) -> WorkerProcess:
        purge_queues(*queues)
        worker = WorkerProcess(list(queues), list(include), tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
