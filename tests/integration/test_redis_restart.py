"""Redis restarted under open sockets and a running Celery worker: a redis-server of the test's
own (never the machine's shared one) serves the channel layer, the cache and the Celery broker;
with a teacher's socket and a student's socket open it is stopped and started again on the
same port. Afterwards the student's next message is stored once, the teacher's live alerts
resume, and the worker keeps running post-turn checks."""

import copy
import signal
import time
import uuid

import kombu.pools
import pytest
import redis
from channels.db import database_sync_to_async as sync_to_async

from tests.conftest import celery_worker
from tests.support.faults import RedisServer, receive_until, reply_lease_released
from tests.support.sockets import teacher_socket
from tutor.celery import app
from tutor.classes.models import Classroom
from tutor.dialogues.models import Message, TutoringSession

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DB = 8  # any database but 0 (tests/conftest.py refuses db 0)


def use_redis(settings, url: str) -> None:
    """Point the channel layer, the cache and Celery at ``url`` (the settings fixture undoes
    the Django side; :func:`restore_celery` the Celery one)."""
    settings.REDIS_URL = url
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"] = [{"address": url, "socket_timeout": 15}]
    settings.CHANNEL_LAYERS = layers  # channels drops its cached layer on the change
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["LOCATION"] = url
    settings.CACHES = caches
    set_celery(url, url)


def set_celery(broker: str, backend: str) -> None:
    app.conf.broker_url = broker
    app.conf.result_backend = backend
    # kombu keeps its connection and producer pools in process-wide groups keyed by broker:
    # closing one pool alone leaves a closed pool there for the next test to acquire from.
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.backend  # noqa: B018 (touch the cached property so that it is dropped below)
    app.__dict__.pop("backend", None)
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def redis_server(settings, tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    before = (app.conf.broker_url, app.conf.result_backend)
    use_redis(settings, f"{server.url}/{DB}")
    yield server
    set_celery(*before)
    server.stop(signal.SIGKILL)


@pytest.fixture
def worker(redis_server):
    with celery_worker(app.conf.task_default_queue):
        yield


@pytest.fixture
def classroom(teacher):
    return Classroom.objects.create(name="7B", teacher=teacher)


@pytest.fixture
def student(make_user):
    return make_user("stu")


@pytest.fixture
def tutoring_session(student, problem, classroom):
    return TutoringSession.objects.create(student=student, problem=problem, classroom=classroom)


def checked(message_id: int, seconds: float = 20) -> bool:
    """Whether the worker ran the turn check on the tutor's message (it stores a verdict)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Message.objects.get(pk=message_id).leaked_answer is not None:
            return True
        time.sleep(0.1)
    return False


async def chat(ws, session, text: str) -> tuple[dict, dict]:
    """Send ``text`` as a new message: (its acknowledgement, the stored reply)."""
    await reply_lease_released(session.pk)
    client_id = str(uuid.uuid4())
    await ws.send_json_to({"type": "message", "text": text, "client_id": client_id})
    ack, frames = await receive_until(ws, "message")
    assert ack["message"]["client_id"] == client_id, frames
    end, frames = await receive_until(ws, "reply.end")
    assert end["message"] is not None and not end["message"]["partial"], frames
    return ack, end


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
async def test_sockets_and_worker_carry_on_after_redis_restarts(
    redis_server,
    worker,
    model_server,
    connect,
    session_cookie,
    teacher,
    student,
    tutoring_session,
    stop_signal,
):
    session = tutoring_session
    teacher_ws = await teacher_socket(teacher, session_cookie)
    assert (await teacher_ws.receive_json_from())["type"] == "hello"
    ws = await connect(session.pk, student)
    assert (await ws.receive_json_from())["type"] == "session"

    # Before: an alert reaches the teacher and the worker checks the tutor's turn.
    ack, end = await chat(ws, session, "I want to kill myself")
    alert = await teacher_ws.receive_json_from(timeout=10)
    assert alert["type"] == "flag" and alert["flag"]["message_id"] == ack["message"]["id"]
    assert await sync_to_async(checked)(end["message"]["id"])

    redis_server.restart(stop_signal)

    # The teacher's socket listens on the channel layer: the restart ends it (a closed socket,
    # which the page reopens), and the reopened one gets the alerts again.
    with pytest.raises(redis.exceptions.ConnectionError):
        await teacher_ws.wait(timeout=5)
    # The page retries with a back-off (frontend/src/teacher.js). The first reopening in this
    # process may fail once more: channels_redis's pool still holds a connection from before.
    hello = None
    for _ in range(3):
        teacher_ws = await teacher_socket(teacher, session_cookie)
        try:
            hello = await teacher_ws.receive_json_from()
            break
        except redis.exceptions.ConnectionError:
            continue
    assert hello == {"type": "hello", "open_flags": 1}, "the teacher's socket never reopened"

    # After: the same student socket (its chat does not depend on the channel layer), the
    # same worker.
    ack, end = await chat(ws, session, "there is no point in living")
    texts = await sync_to_async(
        lambda: list(
            Message.objects.filter(session=session, role="student").values_list("text", flat=True)
        )
    )()
    assert texts == ["I want to kill myself", "there is no point in living"]
    try:
        alert = await teacher_ws.receive_json_from(timeout=10)
    except TimeoutError:
        pytest.fail("the teacher's socket got no alert after Redis restarted")
    assert alert["type"] == "flag" and alert["flag"]["message_id"] == ack["message"]["id"]
    assert await sync_to_async(checked)(end["message"]["id"]), "the worker stopped checking"
    await ws.disconnect()
    await teacher_ws.disconnect()
