import pytest
from celery.contrib.testing.worker import start_worker

from tests.support.scripted_model_server import ScriptedModelServer
from tutor.celery import app


@pytest.fixture
def model_server(settings):
    with ScriptedModelServer() as server:
        settings.TUTOR_MODEL_BASE_URL = server.base_url
        settings.TUTOR_MODEL_READ_TIMEOUT = 10
        yield server


@pytest.fixture
def worker():
    """A real Celery worker (a thread of this process) on the default queue, over Redis. The
    queue is named: a worker started with ``queues=`` narrows the app's queue selection for
    later workers of the same process."""
    assert app.conf.broker_url.startswith("redis://"), "tests must use the Redis broker"
    queue = app.conf.task_default_queue
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)
    with start_worker(
        app, pool="solo", queues=[queue], perform_ping_check=False, shutdown_timeout=10
    ):
        yield
