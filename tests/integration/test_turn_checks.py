"""The post-turn answer-leak check runs in a real Celery worker over the Redis broker."""

import time

import pytest

from tutor.celery import app
from tutor.dialogues import services
from tutor.dialogues.models import Message, TutoringSession

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for_check(message: Message, seconds: float = 20) -> bool | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message.refresh_from_db()
        if message.leaked_answer is not None:
            return message.leaked_answer
        time.sleep(0.1)
    raise AssertionError("the worker did not check the turn")


def test_stored_tutor_turns_are_checked_for_leaks_by_the_worker(worker, make_user, problem):
    session = TutoringSession.objects.create(student=make_user("s"), problem=problem)
    Message.objects.create(session=session, role="student", text="what do I do first?")
    reply = services.TutorReply(text="Divide 18 by 3 and you get 6.", thinking="", partial=False)
    leaking = services.store_tutor_reply(session, reply)
    reply = services.TutorReply(text="What is 25 - 7?", thinking="", partial=False)
    guiding = services.store_tutor_reply(session, reply)
    assert wait_for_check(leaking) is True
    assert wait_for_check(guiding) is False


@pytest.fixture
def broker_down():
    """Point the app at a port where no broker listens, with a fresh connection pool."""
    previous = app.conf.broker_url
    app.pool.force_close_all()
    app._pool = None
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    yield
    app.pool.force_close_all()
    app._pool = None
    app.conf.broker_url = previous


def test_a_broker_outage_does_not_lose_the_reply(broker_down, make_user, problem, caplog):
    session = TutoringSession.objects.create(student=make_user("s"), problem=problem)
    reply = services.TutorReply(text="Hint: subtract 7.", thinking="", partial=False)
    message = services.store_tutor_reply(session, reply)
    assert Message.objects.filter(pk=message.pk, leaked_answer=None).exists()
    assert "could not queue the turn check" in caplog.text
