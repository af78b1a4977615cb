from pathlib import Path

import pytest

from tests.conftest import purge_queues
from tests.support.scripted_model_server import ScriptedModelServer
from tests.support.worker_process import WorkerProcess

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


@pytest.fixture
def worker_process(transactional_db, tmp_path):
    """Start a Celery worker process on ``queues`` (purged first), importing the ``include``
    modules besides the app's tasks; it is stopped at the end of the test, before the test
    database is emptied."""
    started: list[WorkerProcess] = []

    def start(*queues: str, include: tuple[str, ...] = ()) -> WorkerProcess:
        purge_queues(*queues)
        worker = WorkerProcess(queues, tmp_path / f"worker-{len(started)}.log", include=include)
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
