"""Hostile input to the tutor socket: every frame gets a clear answer, nothing is lost or stored
twice, and one student cannot multiply the load (PostgreSQL, Redis, a scripted model server)."""

import asyncio
import json
import time
import uuid

import pytest
from channels.db import database_sync_to_async as sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.sockets import receive_until
from tutor.dialogues.consumers import TutorConsumer
from tutor.dialogues.models import AnswerAttempt, Message, TutoringSession

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The error codes the socket may answer with (docs/protocol.md).
ERROR_CODES = {
    "bad_frame",
    "bad_json",
    "too_long",
    "empty",
    "unknown_type",
    "busy",
    "session_closed",
    "rate_limited",
    "uncheckable",
    "too_many_attempts",
    "model_unavailable",
    "model_failed",
    "internal",
    "ambiguous_answer",
    "unknown_message",
    "flooding",
}


@pytest.fixture(autouse=True)
def clear_limits():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


async def opened(connect, session, user):
    ws = await connect(session.pk, user)
    hello = await ws.receive_json_from()
    assert hello["type"] == "session"
    return ws


def messages_of(session, **filters):
    return list(Message.objects.filter(session=session, **filters).order_by("id"))


async def test_a_lone_surrogate_is_repaired_and_stored_once(
    connect, model_server, student, tutoring_session
):
    ws = await opened(connect, tutoring_session, student)
    client_id = str(uuid.uuid4())
    frame = json.dumps({"type": "message", "text": "x \ud800 y", "client_id": client_id})
    assert "\\ud800" in frame  # sent as the escape a browser's JSON.stringify writes
    await ws.send_to(text_data=frame)
    echo = await ws.receive_json_from()
    assert echo["type"] == "message" and echo["message"]["text"] == "x \ufffd y"
    await receive_until(ws, "reply.end")
    # Resent after a reconnect: recognised, not stored twice.
    await ws.send_to(text_data=frame)
    again = await ws.receive_json_from()
    assert again["type"] == "message" and again["message"]["client_id"] == client_id
    await ws.send_json_to({"type": "ping"})
    assert (await receive_until(ws, "pong"))["type"] == "pong"
    students = await sync_to_async(messages_of)(tutoring_session, role="student")
    assert [m.text for m in students] == ["x \ufffd y"]


@pytest.mark.parametrize("interval", [0.0, 0.05, 1.0])
async def test_the_deltas_add_up_to_the_stored_reply_at_any_coalescing_interval(
    connect, model_server, student, tutoring_session, settings, interval
):
    settings.TUTOR_COALESCE_SECONDS = interval  # 0.05 in production; the tests' default is 0
    ws = await opened(connect, tutoring_session, student)
    await ws.send_json_to({"type": "message", "text": "How do I start?"})
    frames = []
    end = await receive_until(ws, "reply.end", collect=frames)
    deltas = "".join(f["text"] for f in frames if f["type"] == "reply.delta")
    assert deltas.strip() == end["message"]["text"] == "Good start! What is $3x$?"


async def test_an_unexpected_error_is_an_internal_frame_and_the_socket_lives_on(
    connect, student, tutoring_session, monkeypatch
):
    async def broken(self, frame):
        raise RuntimeError("a bug")

    monkeypatch.setitem(TutorConsumer.handlers, "ping", broken)
    ws = await opened(connect, tutoring_session, student)
    await ws.send_json_to({"type": "ping"})
    error = await ws.receive_json_from()
    assert error == {
        "type": "error",
        "code": "internal",
        "detail": "Something went wrong on our side. Please try again.",
    }
    monkeypatch.undo()
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from())["type"] == "pong"


async def test_two_tabs_stream_one_reply(connect, model_server, student, tutoring_session):
    first = await opened(connect, tutoring_session, student)
    second = await opened(connect, tutoring_session, student)
    await first.send_json_to({"type": "message", "text": "[slow] first tab"})
    assert (await first.receive_json_from())["type"] == "message"
    assert (await first.receive_json_from())["type"] == "reply.start"
    await second.send_json_to({"type": "message", "text": "second tab", "client_id": None})
    busy = await second.receive_json_from()
    assert busy["type"] == "error" and busy["code"] == "busy"
    await receive_until(first, "reply.end", wait=30)
    # The reply is over: the lease is free for either tab.
    await second.send_json_to({"type": "message", "text": "second tab again"})
    assert (await second.receive_json_from())["type"] == "message"
    await receive_until(second, "reply.end")
    students = await sync_to_async(messages_of)(tutoring_session, role="student")
    assert [m.text for m in students] == ["[slow] first tab", "second tab again"]


async def test_many_sockets_at_once_stream_one_reply(
    connect, model_server, student, tutoring_session
):
    sockets = [await opened(connect, tutoring_session, student) for _ in range(6)]
    await asyncio.gather(
        *(
            ws.send_json_to({"type": "message", "text": f"[slow] tab {i}"})
            for i, ws in enumerate(sockets)
        )
    )
    answers = [await ws.receive_json_from(timeout=10) for ws in sockets]
    accepted = [a for a in answers if a["type"] == "message"]
    refused = [a for a in answers if a["type"] == "error"]
    assert len(accepted) == 1 and {a["code"] for a in refused} == {"busy"}
    assert len(model_server.requests) <= 1
    for ws, answer in zip(sockets, answers, strict=True):
        if answer["type"] == "message":
            await receive_until(ws, "reply.end", wait=30)
    assert len(model_server.requests) == 1


async def test_messages_per_minute_are_limited(
    connect, model_server, student, tutoring_session, settings
):
    settings.TUTOR_RATE_MESSAGES_PER_MINUTE = 2
    ws = await opened(connect, tutoring_session, student)
    for text in ["one", "two"]:
        await ws.send_json_to({"type": "message", "text": text})
        assert (await ws.receive_json_from())["type"] == "message"
        await receive_until(ws, "reply.end")
    client_id = str(uuid.uuid4())
    await ws.send_json_to({"type": "message", "text": "three", "client_id": client_id})
    limited = await ws.receive_json_from()
    assert limited["code"] == "rate_limited" and limited["client_id"] == client_id
    assert "wait" in limited["detail"]
    students = await sync_to_async(messages_of)(tutoring_session, role="student")
    assert [m.text for m in students] == ["one", "two"]


async def test_a_flooding_socket_is_closed_and_its_student_paused(
    connect, student, make_user, problem, settings
):
    settings.TUTOR_RATE_ANSWERS_PER_MINUTE = 1
    settings.TUTOR_FLOOD_REFUSALS = 4
    settings.TUTOR_FLOOD_COOLDOWN_SECONDS = 2
    other = await sync_to_async(make_user)("other")
    mine = await sync_to_async(TutoringSession.objects.create)(student=student, problem=problem)
    theirs = await sync_to_async(TutoringSession.objects.create)(student=other, problem=problem)
    flooder = await opened(connect, mine, student)
    bystander = await opened(connect, theirs, other)
    for guess in range(6):
        await flooder.send_json_to({"type": "answer", "answer": str(guess)})
    codes = []
    while True:
        frame = await flooder.receive_json_from(timeout=5)
        codes.append(frame.get("code", frame["type"]))
        if frame.get("code") == "flooding":
            assert frame["retry_after"] == 2 and "paused for 2 s" in frame["detail"]
            break
    # One answer checked, four refusals tolerated, the fifth closes the socket.
    assert codes == ["answer.result"] + ["rate_limited"] * 5 + ["flooding"]
    assert (await flooder.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4429}
    # The student's new sockets are refused for the cool-down, before any database work...
    again = await connect(mine.pk, student)
    refused = await again.receive_json_from(timeout=5)
    assert refused["code"] == "flooding"
    assert (await again.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4429}
    # ...while another student's socket never noticed.
    await bystander.send_json_to({"type": "ping"})
    assert (await bystander.receive_json_from(timeout=2))["type"] == "pong"
    await asyncio.sleep(2.2)
    back = await opened(connect, mine, student)
    await back.send_json_to({"type": "ping"})
    assert (await back.receive_json_from(timeout=2))["type"] == "pong"
    attempts = await sync_to_async(AnswerAttempt.objects.filter(session=mine).count)()
    assert attempts == 1


async def test_a_paused_browser_is_refused_at_the_handshake_before_any_database_work(
    student, tutoring_session, settings, session_cookie, monkeypatch
):
    from channels.testing import WebsocketCommunicator
    from django.contrib.sessions.backends.db import SessionStore

    from tutor.asgi import application

    settings.TUTOR_RATE_ANSWERS_PER_MINUTE = 1
    settings.TUTOR_FLOOD_REFUSALS = 2
    settings.TUTOR_FLOOD_COOLDOWN_SECONDS = 2
    cookie = await sync_to_async(session_cookie)(student)
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"sessionid={cookie}".encode()),
    ]

    def socket():
        path = f"/ws/sessions/{tutoring_session.pk}/"
        return WebsocketCommunicator(application, path, headers=headers)

    flooder = socket()
    assert (await flooder.connect(timeout=5))[0]
    assert (await flooder.receive_json_from(timeout=5))["type"] == "session"
    for guess in range(4):
        await flooder.send_json_to({"type": "answer", "answer": str(guess)})
    codes = []
    while not codes or codes[-1] != "flooding":
        codes.append((await flooder.receive_json_from(timeout=5)).get("code"))
    assert codes == [None, "rate_limited", "rate_limited", "rate_limited", "flooding"]
    assert (await flooder.receive_output(timeout=5))["code"] == 4429
    # The same browser, reconnecting at once, is refused with the pause's own code, and its
    # session is never read from the database.
    loads = []
    real_load = SessionStore.load
    monkeypatch.setattr(SessionStore, "load", lambda store: loads.append(1) or real_load(store))
    again = socket()
    assert (await again.connect(timeout=5)) == (False, 4429)
    assert loads == []
    await asyncio.sleep(2.2)
    back = socket()
    assert (await back.connect(timeout=5))[0]
    assert (await back.receive_json_from(timeout=5))["type"] == "session"
    assert loads  # the gate only stands in front while the pause lasts
    await back.disconnect()


async def test_a_costly_answer_gets_a_clear_error_and_others_keep_their_pings(
    connect, student, make_user, problem
):
    other = await sync_to_async(make_user)("other")
    mine = await sync_to_async(TutoringSession.objects.create)(student=student, problem=problem)
    theirs = await sync_to_async(TutoringSession.objects.create)(student=other, problem=problem)
    hostile = await opened(connect, mine, student)
    bystander = await opened(connect, theirs, other)

    await hostile.send_json_to({"type": "answer", "answer": "(10^10)^(10^10)"})
    gaps = []
    for _ in range(5):
        sent = time.monotonic()
        await bystander.send_json_to({"type": "ping"})
        assert (await bystander.receive_json_from(timeout=2))["type"] == "pong"
        gaps.append(time.monotonic() - sent)
        await asyncio.sleep(0.1)
    error = await hostile.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "uncheckable"
    # A hang guard, not a speed goal (benchmarks/costly_answers.py measures round trips).
    assert max(gaps) < 1.0
    # For a while this student's expressions are refused before any work; plain numbers
    # (checked without the pool) still get their verdict.
    await hostile.send_json_to({"type": "answer", "answer": "x = 6"})
    cooled = await hostile.receive_json_from(timeout=5)
    assert cooled["code"] == "uncheckable" and "plain" in cooled["detail"]
    await hostile.send_json_to({"type": "answer", "answer": "6"})
    result = await hostile.receive_json_from(timeout=5)
    assert result["type"] == "answer.result" and result["attempt"]["correct"] is True
    attempts = await sync_to_async(list)(AnswerAttempt.objects.filter(session=mine))
    assert [(a.answer, a.correct) for a in attempts] == [("6", True)]


async def test_answer_attempts_per_session_are_limited(
    connect, student, tutoring_session, settings
):
    settings.TUTOR_MAX_ANSWER_ATTEMPTS = 3
    ws = await opened(connect, tutoring_session, student)
    for guess in ["1", "2", "3"]:
        await ws.send_json_to({"type": "answer", "answer": guess})
        assert (await ws.receive_json_from())["type"] == "answer.result"
    await ws.send_json_to({"type": "answer", "answer": "6"})
    refused = await ws.receive_json_from()
    assert refused["code"] == "too_many_attempts"
    count = await sync_to_async(AnswerAttempt.objects.filter(session=tutoring_session).count)()
    assert count == 3


async def test_answers_per_minute_are_limited(connect, student, tutoring_session, settings):
    settings.TUTOR_RATE_ANSWERS_PER_MINUTE = 2
    ws = await opened(connect, tutoring_session, student)
    for guess in ["1", "2"]:
        await ws.send_json_to({"type": "answer", "answer": guess})
        assert (await ws.receive_json_from())["type"] == "answer.result"
    await ws.send_json_to({"type": "answer", "answer": "3"})
    assert (await ws.receive_json_from())["code"] == "rate_limited"


# ---- searching: any frame gets a well-formed answer, and the socket keeps working ----------------

_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_frame = st.one_of(
    # well-typed frames with hostile values
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "answer", "stop", "ping", "rate"])},
        optional={
            "text": st.one_of(st.text(max_size=300), _json_value),
            "answer": st.one_of(st.text(max_size=80), _json_value),
            "client_id": st.one_of(st.uuids().map(str), st.text(max_size=40), _json_value),
            "message_id": st.one_of(st.integers(), _json_value),
            "helpful": _json_value,
            "reason": st.one_of(st.text(max_size=400), _json_value),
        },
    ).map(json.dumps),
    # any JSON at all, and text that is not JSON
    _json_value.map(json.dumps),
    st.text(min_size=1, max_size=200),
    # lone surrogates and control characters inside otherwise valid frames
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFFFF), max_size=40).map(
        lambda t: json.dumps({"type": "message", "text": t})
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(frames=st.lists(_frame, min_size=1, max_size=6))
def test_any_frames_get_well_formed_answers(frames, connect, model_server, student, problem):
    from asgiref.sync import async_to_sync

    @async_to_sync
    async def exchange():
        from django.core.cache import cache

        await sync_to_async(cache.clear)()
        session = await sync_to_async(TutoringSession.objects.create)(
            student=student, problem=problem
        )
        ws = await opened(connect, session, student)
        for raw in frames:
            await ws.send_to(text_data=raw)
        # Whatever came before, the socket still answers, and every frame it sent is one the
        # protocol knows.
        await ws.send_json_to({"type": "ping"})
        seen = []
        await receive_until(ws, "pong", wait=20, collect=seen)
        for frame in seen:
            assert frame["type"] in {
                "message",
                "reply.start",
                "reply.delta",
                "reply.end",
                "answer.result",
                "rated",
                "error",
                "pong",
            }
            if frame["type"] == "error":
                assert frame["code"] in ERROR_CODES and frame["detail"]
        await ws.disconnect()
        stored = await sync_to_async(messages_of)(session, role="student")
        ids = [m.client_id for m in stored if m.client_id]
        assert len(ids) == len(set(ids)), "a message was stored twice"

    exchange()
