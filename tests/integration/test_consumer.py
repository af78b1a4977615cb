"""The tutor socket against PostgreSQL, with a scripted model server (see tests/support)."""

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async as sync_to_async

from tests.support.scripted_model_server import slow_word
from tests.support.sockets import receive_until
from tutor.dialogues.models import Message, TutoringSession

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def stored(session, **filters):
    return list(Message.objects.filter(session=session, **filters).order_by("id"))


async def test_full_exchange_streams_strips_thinking_and_stores_once(
    connect, model_server, student, tutoring_session
):
    ws = await connect(tutoring_session.pk, student)
    hello = await ws.receive_json_from()
    assert hello["type"] == "session" and hello["messages"] == []
    assert hello["session"]["problem"]["title"] == "Solve for x"

    client_id = str(uuid.uuid4())
    await ws.send_json_to({"type": "message", "text": "How do I start?", "client_id": client_id})
    echo = await ws.receive_json_from()
    assert echo["type"] == "message"
    assert echo["message"]["client_id"] == client_id and echo["message"]["role"] == "student"

    frames = []
    end = await receive_until(ws, "reply.end", collect=frames)
    deltas = [f["text"] for f in frames if f["type"] == "reply.delta"]
    assert frames[0]["type"] == "reply.start"
    assert len(deltas) >= 2, "the reply should arrive in pieces"
    assert "".join(deltas) == "Good start! What is $3x$?"
    assert "answer is 6" not in "".join(deltas)
    assert end["message"]["text"] == "Good start! What is $3x$?"
    assert end["message"]["partial"] is False

    tutor = await sync_to_async(stored)(tutoring_session, role="tutor")
    assert len(tutor) == 1
    assert tutor[0].thinking == "The answer is 6; do not say it."
    assert (tutor[0].prompt_tokens, tutor[0].completion_tokens) == (42, 17)
    assert tutor[0].time_to_first_token_ms is not None and tutor[0].duration_ms is not None
    assert tutor[0].finish_reason == "stop"

    # The model saw the problem, the answer it must keep, and the student's message.
    request = model_server.requests[-1]
    assert "3x + 7 = 25" in request["messages"][0]["content"]
    assert request["messages"][-1] == {"role": "user", "content": "How do I start?"}
    await ws.disconnect()


async def test_student_message_is_stored_before_the_model_is_asked(
    connect, model_server, student, tutoring_session
):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "[hang] are you there?"})
    await receive_until(ws, "reply.start")
    # The model has not answered at all yet, and the message is already in the database.
    assert [m.text for m in await sync_to_async(stored)(tutoring_session)] == [
        "[hang] are you there?"
    ]
    await ws.send_json_to({"type": "stop"})
    end = await receive_until(ws, "reply.end")
    assert end["message"] is None  # nothing was written, so nothing stored
    await ws.disconnect()


async def test_stop_stores_the_partial_reply(connect, model_server, student, tutoring_session):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "[slow] explain"})
    await receive_until(ws, "reply.delta")
    await receive_until(ws, "reply.delta")
    await ws.send_json_to({"type": "stop"})
    end = await receive_until(ws, "reply.end")
    assert end["message"]["partial"] is True
    assert end["message"]["text"].startswith(f"{slow_word(0)} {slow_word(1)}")
    tutor = await sync_to_async(stored)(tutoring_session, role="tutor")
    assert len(tutor) == 1 and tutor[0].partial and tutor[0].finish_reason == "stopped"
    assert slow_word(199) not in tutor[0].text
    # The socket is still usable after a stop.
    await ws.send_json_to({"type": "message", "text": "ok, go on"})
    end = await receive_until(ws, "reply.end")
    assert end["message"]["partial"] is False
    await ws.disconnect()


async def test_disconnect_mid_stream_stores_partial_and_reconnect_sees_it(
    connect, model_server, student, tutoring_session
):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "[slow] go"})
    await receive_until(ws, "reply.delta")
    await receive_until(ws, "reply.delta")
    await ws.disconnect()
    tutor = await sync_to_async(stored)(tutoring_session, role="tutor")
    assert len(tutor) == 1 and tutor[0].partial and tutor[0].finish_reason == "disconnected"

    again = await connect(tutoring_session.pk, student)
    transcript = await again.receive_json_from()
    assert [(m["role"], m["partial"]) for m in transcript["messages"]] == [
        ("student", False),
        ("tutor", True),
    ]
    await again.disconnect()


async def test_resent_client_id_is_not_stored_or_answered_twice(
    connect, model_server, student, tutoring_session
):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    frame = {"type": "message", "text": "hello", "client_id": str(uuid.uuid4())}
    await ws.send_json_to(frame)
    await receive_until(ws, "reply.end")
    requests_before = len(model_server.requests)
    await ws.send_json_to(frame)
    echo = await ws.receive_json_from()
    assert echo["type"] == "message"
    assert await ws.receive_nothing(timeout=0.3)
    assert len(await sync_to_async(stored)(tutoring_session, role="student")) == 1
    assert len(model_server.requests) == requests_before
    await ws.disconnect()


async def test_model_server_down_gives_clear_error_and_keeps_the_message(
    connect, settings, student, tutoring_session
):
    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "hello?"})
    error = await receive_until(ws, "error")
    assert error["code"] == "model_unavailable"
    assert "saved" in error["detail"]
    await receive_until(ws, "reply.end")
    assert [m.text for m in await sync_to_async(stored)(tutoring_session)] == ["hello?"]
    await ws.disconnect()


async def test_model_server_refusing_the_model_is_reported(
    connect, model_server, student, tutoring_session
):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "[refuse] hi"})
    error = await receive_until(ws, "error")
    assert error["code"] == "model_unavailable"
    await ws.disconnect()


async def test_model_server_dying_mid_stream_keeps_what_was_written(
    connect, model_server, student, tutoring_session
):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "[die] help"})
    error = await receive_until(ws, "error")
    assert error["code"] == "model_failed"
    end = await receive_until(ws, "reply.end")
    assert end["message"]["partial"] is True
    assert end["message"]["text"] == "Let's look at the first step"
    tutor = await sync_to_async(stored)(tutoring_session, role="tutor")
    assert tutor[0].error.startswith("the model server failed mid-reply")
    await ws.disconnect()


async def test_a_queued_request_waits_past_the_read_timeout_for_its_first_token(
    connect, model_server, settings, student, tutoring_session
):
    # A busy vLLM server sends nothing until it schedules the request: that is a queue, and the
    # reply must come, however long the silence between later chunks may be.
    settings.TUTOR_MODEL_READ_TIMEOUT = 0.3
    settings.TUTOR_MODEL_FIRST_TOKEN_TIMEOUT = 10
    model_server.queue_seconds = 1.0
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "[queued] help"})
    frames = []
    end = await receive_until(ws, "reply.end", collect=frames)
    assert not [f for f in frames if f["type"] == "error"]
    assert end["message"]["text"] == "Good start! What is $3x$?"
    assert end["message"]["partial"] is False
    await ws.disconnect()


@pytest.mark.parametrize(
    ("text", "read_timeout", "first_token_timeout", "written", "error"),
    [
        # alive, one chunk, then silence: timed out between chunks, what it wrote is kept
        ("[stall] help", 0.5, 10, "Let's see", "the model server sent nothing for 0.5 s mid-reply"),
        # never starts: timed out waiting for the first chunk, nothing to keep but the message
        ("[hang] help", 0.2, 0.6, None, None),
    ],
)
async def test_a_model_that_goes_silent_times_out_with_a_clear_error(
    connect, model_server, settings, student, tutoring_session,
    text, read_timeout, first_token_timeout, written, error,
):  # fmt: skip
    settings.TUTOR_MODEL_READ_TIMEOUT = read_timeout
    settings.TUTOR_MODEL_FIRST_TOKEN_TIMEOUT = first_token_timeout
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": text})
    frame = await receive_until(ws, "error", wait=5)
    assert frame["code"] == "model_failed"
    end = await receive_until(ws, "reply.end")
    messages = await sync_to_async(stored)(tutoring_session)
    assert messages[0].text == text  # the student's message is kept
    if written is None:
        assert end["message"] is None and len(messages) == 1
    else:
        assert end["message"]["partial"] is True
        assert end["message"]["text"] == written
        assert messages[1].error == error
    await ws.disconnect()


async def test_a_hanging_model_does_not_block_other_students(
    connect, model_server, make_user, problem, student, tutoring_session
):
    other = await sync_to_async(make_user)("other")
    other_session = await sync_to_async(TutoringSession.objects.create)(
        student=other, problem=problem
    )
    stuck = await connect(tutoring_session.pk, student)
    await stuck.receive_json_from()
    await stuck.send_json_to({"type": "message", "text": "[hang] hello"})
    await receive_until(stuck, "reply.start")

    fine = await connect(other_session.pk, other)
    await fine.receive_json_from()
    await fine.send_json_to({"type": "message", "text": "hi"})
    end = await asyncio.wait_for(receive_until(fine, "reply.end"), timeout=5)
    assert end["message"]["text"] == "Good start! What is $3x$?"
    await stuck.disconnect()
    await fine.disconnect()


async def test_busy_while_a_reply_is_written(connect, model_server, student, tutoring_session):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "[slow] one"})
    await receive_until(ws, "reply.delta")
    cid = str(uuid.uuid4())
    await ws.send_json_to({"type": "message", "text": "two", "client_id": cid})
    error = await receive_until(ws, "error")
    assert (error["code"], error["client_id"]) == ("busy", cid)
    await ws.send_json_to({"type": "stop"})
    await receive_until(ws, "reply.end")
    texts = [m.text for m in await sync_to_async(stored)(tutoring_session, role="student")]
    assert texts == ["[slow] one"]
    await ws.disconnect()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_json"),
        ('"just a string"', "bad_frame"),
        ('{"type": "launch_missiles"}', "unknown_type"),
        ('{"type": "message"}', "bad_frame"),
        ('{"type": "message", "text": "   "}', "empty"),
        ('{"type": "message", "text": "\\u0000\\u0007"}', "empty"),
        ('{"type": "message", "text": "' + "x" * 2001 + '"}', "too_long"),
        ('{"type": "message", "text": "' + "x" * 20000 + '"}', "too_long"),
        ('{"type": "message", "text": "hi", "client_id": "not-a-uuid"}', "bad_frame"),
        ('{"type": "answer", "answer": 5}', "bad_frame"),
    ],
)
async def test_bad_frames_get_error_frames_and_the_socket_survives(
    connect, model_server, student, tutoring_session, raw, code
):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_to(text_data=raw)
    error = await ws.receive_json_from()
    assert (error["type"], error["code"]) == ("error", code)
    assert error["detail"]
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from() == {"type": "pong"}
    assert await sync_to_async(stored)(tutoring_session) == []
    await ws.disconnect()


async def test_binary_frames_are_refused(connect, student, tutoring_session):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_to(bytes_data=b"\x00\xff")
    error = await ws.receive_json_from()
    assert error["code"] == "bad_frame"
    await ws.disconnect()


async def test_control_characters_are_stripped_before_storing(
    connect, model_server, student, tutoring_session
):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "message", "text": "x\u0000 = \u001b6"})
    echo = await ws.receive_json_from()
    assert echo["message"]["text"] == "x = 6"
    await receive_until(ws, "reply.end")
    await ws.disconnect()


async def test_answers_are_checked_and_solve_the_session(connect, student, tutoring_session):
    ws = await connect(tutoring_session.pk, student)
    await ws.receive_json_from()
    await ws.send_json_to({"type": "answer", "answer": "5"})
    wrong = await ws.receive_json_from()
    assert wrong["attempt"]["correct"] is False
    assert wrong["session"]["outcome"] == "incorrect"
    await ws.send_json_to({"type": "answer", "answer": "12/2"})
    right = await ws.receive_json_from()
    assert right["attempt"]["correct"] is True
    assert right["session"] == {**right["session"], "outcome": "solved", "status": "closed"}
    await ws.send_json_to({"type": "message", "text": "thanks!"})
    closed = await ws.receive_json_from()
    assert closed["code"] == "session_closed"
    await sync_to_async(tutoring_session.refresh_from_db)()
    assert tutoring_session.outcome == "solved" and tutoring_session.solved_at is not None
    assert await sync_to_async(tutoring_session.attempts.count)() == 2
    await ws.disconnect()
