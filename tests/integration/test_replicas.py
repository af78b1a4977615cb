"""Two model server replicas behind TUTOR_MODEL_BASE_URL (scripted OpenAI-compatible servers):
chat sessions spread over both and stay on theirs, a session whose replica is down falls back
to the other before the first token (a reply that dies mid-stream is not retried), and a
promotion loads the adapter on both, reporting a replica that is down without waiting on it."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async as sync_to_async
from django.urls import reverse

from inference import replicas
from tests.support.retraining import make_version
from tests.support.scripted_model_server import ScriptedModelServer
from tutor.dialogues.models import Message, TutoringSession
from tutor.retraining import services
from tutor.retraining.models import Promotion

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def fresh_health():
    replicas.HEALTH.reset()
    yield
    replicas.HEALTH.reset()


def stop(server: ScriptedModelServer) -> None:
    """The replica goes away: its port refuses connections from now on."""
    server.__exit__(None, None, None)
    server.stopped = True


@pytest.fixture
def two_servers(settings):
    servers = [ScriptedModelServer(served_models={settings.TUTOR_MODEL_NAME}) for _ in range(2)]
    for server in servers:
        server.__enter__()
        server.stopped = False
    settings.TUTOR_MODEL_BASE_URL = ",".join(s.base_url for s in servers)
    settings.TUTOR_MODEL_READ_TIMEOUT = 10
    settings.TUTOR_MODEL_CONNECT_TIMEOUT = 2
    yield servers
    for server in servers:
        if not server.stopped:
            stop(server)


@pytest.fixture
def admin(make_user):
    return make_user("root", role="admin")


def primary(session: TutoringSession, settings) -> str:
    """The replica a session is routed to while both are healthy."""
    return replicas.route(f"session-{session.pk}", settings.TUTOR_MODEL_BASE_URL, None)[0]


def sessions_on(student, problem, settings, servers, per_server: int) -> dict[str, list]:
    """Sessions, ``per_server`` routed to each server."""
    found: dict[str, list] = {s.base_url: [] for s in servers}
    for _ in range(200):
        if all(len(v) >= per_server for v in found.values()):
            break
        session = TutoringSession.objects.create(student=student, problem=problem)
        chosen = found[primary(session, settings)]
        if len(chosen) < per_server:
            chosen.append(session)
        else:
            session.delete()
    return found


async def receive_until(communicator, frame_type, wait=10):
    while True:
        frame = await communicator.receive_json_from(timeout=wait)
        if frame["type"] == frame_type:
            return frame


async def chat(connect, session, student, text: str) -> tuple[dict, dict | None]:
    """Send one message; the reply.end frame and any error frame before it."""
    ws = await connect(session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": text, "client_id": str(uuid.uuid4())})
    error = None
    while True:
        frame = await ws.receive_json_from(timeout=10)
        if frame["type"] == "error":
            error = frame
        if frame["type"] == "reply.end":
            await ws.disconnect()
            return frame, error


def asked(server: ScriptedModelServer) -> list[str]:
    """The last user message of every chat request the server got."""
    return [
        next(m["content"] for m in reversed(r["messages"]) if m["role"] == "user")
        for r in server.requests
    ]


@pytest.mark.django_db(transaction=True)
async def test_sessions_spread_over_the_replicas_and_stay_on_theirs(
    connect, settings, two_servers, make_user, problem
):
    student = await sync_to_async(make_user)("stu")
    found = await sync_to_async(sessions_on)(student, problem, settings, two_servers, 2)
    for sessions in found.values():
        for session in sessions:
            for turn in (1, 2):
                end, error = await chat(connect, session, student, f"s{session.pk} turn {turn}")
                assert error is None and end["message"]["text"] == "Good start! What is $3x$?"
    for server in two_servers:
        expected = sorted(f"s{s.pk} turn {t}" for s in found[server.base_url] for t in (1, 2))
        assert sorted(asked(server)) == expected  # each session's turns, all on its replica
    assert await sync_to_async(Message.objects.filter(role="tutor").count)() == 8


@pytest.mark.django_db(transaction=True)
async def test_a_session_whose_replica_is_down_is_served_by_the_other(
    connect, settings, two_servers, make_user, problem
):
    student = await sync_to_async(make_user)("stu")
    alive, down = two_servers
    found = await sync_to_async(sessions_on)(student, problem, settings, two_servers, 1)
    [moved], [stays] = found[down.base_url], found[alive.base_url]
    stop(down)

    end, error = await chat(connect, moved, student, "first, while it is down")
    assert error is None and end["message"]["text"] == "Good start! What is $3x$?"
    assert replicas.HEALTH.is_down(down.base_url)
    end, error = await chat(connect, moved, student, "second")
    assert error is None and end["message"]["partial"] is False
    end, error = await chat(connect, stays, student, "on its own replica")
    assert error is None
    assert asked(alive) == ["first, while it is down", "second", "on its own replica"]
    assert down.requests == []


@pytest.mark.django_db(transaction=True)
async def test_a_reply_that_dies_mid_stream_is_not_retried_on_the_other_replica(
    connect, settings, two_servers, make_user, problem
):
    student = await sync_to_async(make_user)("stu")
    found = await sync_to_async(sessions_on)(student, problem, settings, two_servers, 1)
    first = two_servers[0]
    [session] = found[first.base_url]
    end, error = await chat(connect, session, student, "[die]")
    assert error["code"] == "model_failed"
    assert end["message"]["partial"] is True and "the first step" in end["message"]["text"]
    assert [len(s.requests) for s in two_servers] == [1, 0]
    assert not replicas.HEALTH.is_down(first.base_url)


@pytest.mark.django_db(transaction=True)
async def test_every_replica_down_says_the_tutor_is_unavailable(
    connect, settings, two_servers, make_user, problem
):
    student = await sync_to_async(make_user)("stu")
    session = await sync_to_async(TutoringSession.objects.create)(student=student, problem=problem)
    for server in two_servers:
        stop(server)
    end, error = await chat(connect, session, student, "anyone?")
    assert error["code"] == "model_unavailable" and end["message"] is None
    stored = await sync_to_async(list)(Message.objects.filter(session=session).values_list("role"))
    assert stored == [("student",)]


@pytest.mark.django_db
def test_promotion_loads_the_adapter_on_every_replica(client, admin, two_servers):
    version = make_version("tutor-v3")
    client.force_login(admin)
    url = reverse("retraining:version_promote", args=[version.pk])
    response = client.post(url, {"scope": "global", "override": "on"}, follow=True)
    assert "now serves new sessions globally" in response.text
    assert "replicas" not in response.text  # no warning
    for server in two_servers:
        assert server.loads == [{"lora_name": "tutor-v3", "lora_path": version.adapter_path}]
        assert "tutor-v3" in server.served_models


@pytest.mark.django_db
def test_a_replica_down_at_promotion_is_reported_and_does_not_block_it(
    client, admin, two_servers, settings
):
    alive, down = two_servers
    stop(down)
    version = make_version("tutor-v4")
    client.force_login(admin)
    url = reverse("retraining:version_promote", args=[version.pk])
    response = client.post(url, {"scope": "global", "override": "on"}, follow=True)
    assert "now serves new sessions globally" in response.text
    assert "tutor-v4 is loaded on 1 of 2 vLLM replicas; not on" in response.text
    assert down.base_url in response.text and "cannot reach" in response.text
    assert Promotion.objects.get(active=True, classroom=None).version == version
    assert "tutor-v4" in alive.served_models


@pytest.mark.django_db(transaction=True)
async def test_a_replica_without_the_adapter_loads_it_on_first_use(
    connect, settings, two_servers, make_user, problem, admin
):
    """A replica restarted (or was down) since the promotion: the session routed there loads
    the adapter on that replica only, on its 404, and asks again."""
    student = await sync_to_async(make_user)("stu")
    version = await sync_to_async(make_version)("tutor-v5")
    await sync_to_async(services.promote)(version, admin, override=True)
    await sync_to_async(services.load_version_adapter)(version)
    restarted, kept = two_servers
    restarted.served_models.discard("tutor-v5")
    found = await sync_to_async(sessions_on)(student, problem, settings, two_servers, 1)
    [session] = found[restarted.base_url]
    end, error = await chat(connect, session, student, "hello")
    assert error is None and end["message"]["text"] == "Good start! What is $3x$?"
    assert [r["model"] for r in restarted.requests] == ["tutor-v5", "tutor-v5"]
    assert len(restarted.loads) == 2 and len(kept.loads) == 1  # promotion, then the 404
    assert kept.requests == []
