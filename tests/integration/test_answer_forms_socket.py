"""Answers as students write them, through the tutor socket: forms read, a choice of values
refused (and not counted as an attempt), the simplest-form rule explained."""

import pytest
from channels.db import database_sync_to_async as sync_to_async

from tutor.dialogues.models import AnswerAttempt, TutoringSession
from tutor.problems.models import Problem

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def student(make_user):
    return make_user("forms-student")


@pytest.fixture
def pizza(db):
    return Problem.objects.create(
        title="Pizza share",
        text="Maya ate 6 of the 8 slices of a pizza. What fraction of the pizza did she eat?",
        final_answer="3/4",
        solution="6/8 = 3/4.",
        require_simplest_form=True,
    )


async def answer(ws, text: str) -> dict:
    await ws.send_json_to({"type": "answer", "answer": text})
    return await ws.receive_json_from(timeout=10)


async def test_forms_choices_and_simplest_form(connect, student, pizza):
    session = await sync_to_async(TutoringSession.objects.create)(student=student, problem=pizza)
    ws = await connect(session.pk, student)
    await ws.receive_json_from()

    frame = await answer(ws, "5 or 6")
    assert frame["type"] == "error" and frame["code"] == "ambiguous_answer"
    assert "more than one answer" in frame["detail"]
    assert await sync_to_async(AnswerAttempt.objects.count)() == 0

    frame = await answer(ws, "6/8")
    assert frame["type"] == "answer.result" and frame["attempt"]["correct"] is False
    assert "simplest form" in frame["feedback"]

    frame = await answer(ws, "75%")
    assert frame["attempt"]["correct"] is True and frame["feedback"] == ""
    assert frame["session"]["outcome"] == "solved"
    await ws.disconnect()
