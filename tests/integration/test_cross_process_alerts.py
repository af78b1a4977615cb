"""Channel-layer delivery across processes: a Celery worker in an OS process of its own raises
flags in the shared test database and pushes the high-severity ones through the Redis channel
layer to a teacher's socket open in this process."""

import pytest
from celery import shared_task
from channels.db import database_sync_to_async as sync_to_async

from tests.support.sockets import teacher_socket
from tutor.classes.models import Classroom
from tutor.dialogues.models import Message, TutoringSession
from tutor.dialogues.tasks import check_tutor_turn
from tutor.reviews import services
from tutor.reviews.models import Flag

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@shared_task(name="tests.moderate_and_alert", acks_late=True)
def moderate_and_alert(message_id: int) -> int | None:
    """What the chat does for a student message, from a worker: moderation stores the flag and
    a high-severity one goes to the teacher's group with :func:`services.notify_flag` (sync
    code, as in every Celery task)."""
    message = Message.objects.select_related("session").get(pk=message_id)
    flag = services.moderate_student_message(message)
    if flag is not None and flag.severity == Flag.Severity.HIGH:
        services.notify_flag(flag)
    return flag.pk if flag is not None else None


@pytest.fixture
def session(make_user, teacher, problem):
    classroom = Classroom.objects.create(name="7B", teacher=teacher)
    return TutoringSession.objects.create(
        student=make_user("stu"), problem=problem, classroom=classroom
    )


async def test_a_worker_process_alerts_the_teacher_socket_of_this_process(
    worker_process, session_cookie, teacher, session
):
    def write(role: str, text: str) -> Message:
        return Message.objects.create(session=session, role=role, text=text)

    first = await sync_to_async(write)("student", "I want to kill myself")
    leak = await sync_to_async(write)("tutor", "Divide 18 by 3 and you get 6.")
    second = await sync_to_async(write)("student", "there is no point in living")

    worker = await sync_to_async(worker_process)("default", include=(__name__,))
    socket = await teacher_socket(teacher, session_cookie)
    assert await socket.receive_json_from() == {"type": "hello", "open_flags": 0}

    # One worker, one task at a time, in order: the turn check, then the two alerts.
    check_tutor_turn.delay(leak.pk)
    moderate_and_alert.delay(first.pk)
    moderate_and_alert.delay(second.pk)

    frames = []
    for _ in range(2):
        try:
            frames.append(await socket.receive_json_from(timeout=20))
        except TimeoutError:
            pytest.fail(
                f"no alert reached the teacher's socket; the worker's log:\n{worker.log_tail()}"
            )
    flags = {
        flag.message_id: flag
        for flag in await sync_to_async(list)(Flag.objects.filter(kind="unsafe_content"))
    }
    for frame, message in zip(frames, (first, second), strict=True):
        assert frame["type"] == "flag"
        assert frame["flag"]["id"] == flags[message.pk].pk
        assert (frame["flag"]["severity"], frame["flag"]["category"]) == ("high", "self-harm")
        assert frame["flag"]["session_id"] == session.pk

    # The worker read and wrote the test's database: the leak is stored, and flagged without
    # an alert (medium flags are listed, not pushed).
    await sync_to_async(leak.refresh_from_db)()
    assert leak.leaked_answer is True
    leak_flag = await sync_to_async(Flag.objects.get)(message=leak)
    assert (leak_flag.kind, leak_flag.severity) == ("answer_leak", "medium")
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()
