"""Students rate tutor replies over the chat socket (the `rate` frame, docs/protocol.md): only
their own session's tutor replies, once per reply (rating again changes it), rate limited, and
any hostile frame gets a clear error (PostgreSQL, Redis)."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async as sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tutor.dialogues import services
from tutor.dialogues.models import Message, ReplyRating, TutoringSession
from tutor.dialogues.services import RatingRequest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Seconds to wait for the server's answer: generous, the machine may be busy.
WAIT = 10
RATING_ERRORS = {"bad_frame", "bad_json", "too_long", "rate_limited", "unknown_message"}


@pytest.fixture
def student(make_user):
    return make_user("rater")


@pytest.fixture
def classmate(make_user):
    return make_user("classmate")


@pytest.fixture(autouse=True)
def clear_limits():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def dialogue(student, problem) -> tuple[TutoringSession, Message, Message]:
    """A session of ``student`` with one student message and one tutor reply."""
    session = TutoringSession.objects.create(student=student, problem=problem)
    asked = Message.objects.create(session=session, role=Message.Role.STUDENT, text="Help?")
    reply = Message.objects.create(
        session=session, role=Message.Role.TUTOR, text="What do you get if you subtract 7?"
    )
    return session, asked, reply


@pytest.fixture
def world(student, classmate, problem):
    session, asked, reply = dialogue(student, problem)
    other_session, _, other_reply = dialogue(classmate, problem)
    return {
        "session": session,
        "asked": asked,
        "reply": reply,
        "other_session": other_session,
        "other_reply": other_reply,
    }


async def opened(connect, session, user):
    ws = await connect(session.pk, user)
    hello = await ws.receive_json_from(timeout=WAIT)
    assert hello["type"] == "session"
    return ws, hello


def ratings_of(**filters) -> list[ReplyRating]:
    return list(ReplyRating.objects.filter(**filters).order_by("id"))


async def test_a_rating_is_stored_once_and_can_be_changed(connect, student, world):
    ws, hello = await opened(connect, world["session"], student)
    assert hello["ratings"] == []
    assert hello["limits"]["max_rating_reason_chars"] == ReplyRating.REASON_MAX_CHARS

    reply_id = world["reply"].pk
    await ws.send_json_to({"type": "rate", "message_id": reply_id, "helpful": True})
    rated = await ws.receive_json_from(timeout=WAIT)
    assert rated["type"] == "rated"
    assert rated["rating"]["message_id"] == reply_id
    assert rated["rating"]["helpful"] is True and rated["rating"]["reason"] == ""

    await ws.send_json_to(
        {
            "type": "rate",
            "message_id": reply_id,
            "helpful": False,
            "reason": "  Too\nvague\x00 for me  ",
        }
    )
    changed = (await ws.receive_json_from(timeout=WAIT))["rating"]
    assert (changed["helpful"], changed["reason"]) == (False, "Too vague for me")

    stored = await sync_to_async(ratings_of)(message_id=reply_id)
    assert len(stored) == 1, "rating again must change the rating, not add one"
    assert (stored[0].student_id, stored[0].helpful, stored[0].reason) == (
        student.pk,
        False,
        "Too vague for me",
    )
    await ws.disconnect()

    # A reload brings the student's own rating back with the transcript.
    ws, hello = await opened(connect, world["session"], student)
    assert [(r["message_id"], r["helpful"], r["reason"]) for r in hello["ratings"]] == [
        (reply_id, False, "Too vague for me")
    ]
    await ws.disconnect()


async def test_only_tutor_replies_of_the_own_session_can_be_rated(connect, student, world):
    ws, _ = await opened(connect, world["session"], student)
    missing = world["other_reply"].pk + 1000
    for message_id in (world["asked"].pk, world["other_reply"].pk, missing):
        await ws.send_json_to({"type": "rate", "message_id": message_id, "helpful": False})
        error = await ws.receive_json_from(timeout=WAIT)
        # The same answer for all three: nothing says which ids exist or whose they are.
        assert error == {
            "type": "error",
            "code": "unknown_message",
            "detail": services.UNKNOWN_REPLY,
        }
    assert await sync_to_async(ratings_of)() == []
    # The socket still works.
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from(timeout=WAIT))["type"] == "pong"
    await ws.disconnect()


async def test_the_classmates_transcript_does_not_show_my_ratings(
    connect, student, classmate, world, problem
):
    """Ratings in the transcript are the session student's own."""
    await sync_to_async(ReplyRating.objects.create)(
        student=student, message=world["reply"], helpful=True
    )
    ws, hello = await opened(connect, world["other_session"], classmate)
    assert hello["ratings"] == []
    await ws.disconnect()


async def test_ratings_are_rate_limited(connect, student, world, settings):
    settings.TUTOR_RATE_RATINGS_PER_MINUTE = 3
    ws, _ = await opened(connect, world["session"], student)
    frame = {"type": "rate", "message_id": world["reply"].pk, "helpful": True}
    for _ in range(3):
        await ws.send_json_to(frame)
        assert (await ws.receive_json_from(timeout=WAIT))["type"] == "rated"
    await ws.send_json_to({**frame, "helpful": False})
    refused = await ws.receive_json_from(timeout=WAIT)
    assert refused["code"] == "rate_limited" and "wait" in refused["detail"]
    stored = await sync_to_async(ratings_of)()
    assert [r.helpful for r in stored] == [True], "a refused rating must not be stored"
    await ws.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "rate"}, "bad_frame"),
        ({"type": "rate", "message_id": "1", "helpful": True}, "bad_frame"),
        ({"type": "rate", "message_id": True, "helpful": True}, "bad_frame"),
        ({"type": "rate", "message_id": 1.0, "helpful": True}, "bad_frame"),
        ({"type": "rate", "message_id": -1, "helpful": True}, "bad_frame"),
        ({"type": "rate", "message_id": 2**70, "helpful": True}, "bad_frame"),
        ({"type": "rate", "message_id": "REPLY", "helpful": "yes"}, "bad_frame"),
        ({"type": "rate", "message_id": "REPLY", "helpful": 1}, "bad_frame"),
        ({"type": "rate", "message_id": "REPLY", "helpful": None}, "bad_frame"),
        ({"type": "rate", "message_id": "REPLY", "helpful": True, "reason": 5}, "bad_frame"),
        ({"type": "rate", "message_id": "REPLY", "helpful": True, "reason": "x" * 301}, "too_long"),
        (
            {"type": "rate", "message_id": "REPLY", "helpful": True, "reason": "x" * 5000},
            "too_long",
        ),
    ],
)
async def test_malformed_rate_frames_get_a_clear_error(connect, student, world, frame, code):
    if frame.get("message_id") == "REPLY":
        frame = {**frame, "message_id": world["reply"].pk}
    ws, _ = await opened(connect, world["session"], student)
    await ws.send_json_to(frame)
    error = await ws.receive_json_from(timeout=WAIT)
    assert error["type"] == "error" and error["code"] == code and error["detail"]
    assert await sync_to_async(ratings_of)() == []
    await ws.disconnect()


async def test_a_reason_of_blanks_is_no_reason(connect, student, world):
    ws, _ = await opened(connect, world["session"], student)
    await ws.send_json_to(
        {"type": "rate", "message_id": world["reply"].pk, "helpful": True, "reason": " \n\t "}
    )
    assert (await ws.receive_json_from(timeout=WAIT))["rating"]["reason"] == ""
    await ws.disconnect()


def test_rate_reply_refuses_a_session_of_somebody_else(student, classmate, world):
    """The service checks ownership itself, not only the socket."""
    request = RatingRequest(world["reply"].pk, True, "")
    assert services.rate_reply(world["session"], classmate, request) is None
    assert services.rate_reply(world["session"], student, request) is not None


# ---- searching: any rate frame gets a clear answer, and only legitimate ratings are stored ------

_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_message_ref = st.one_of(
    st.sampled_from(["REPLY", "ASKED", "OTHER"]), st.integers(min_value=-(2**64)), _json_value
)
_rate_frame = st.fixed_dictionaries(
    {"type": st.just("rate")},
    optional={
        "message_id": _message_ref,
        "helpful": st.one_of(st.booleans(), _json_value),
        "reason": st.one_of(
            st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFFFF), max_size=400),
            _json_value,
        ),
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(frames=st.lists(_rate_frame, min_size=1, max_size=5))
def test_any_rate_frames_get_clear_answers(frames, connect, student, world):
    from asgiref.sync import async_to_sync

    ids = {
        "REPLY": world["reply"].pk,
        "ASKED": world["asked"].pk,
        "OTHER": world["other_reply"].pk,
    }

    @async_to_sync
    async def exchange():
        from django.core.cache import cache

        await sync_to_async(cache.clear)()
        ws, _ = await opened(connect, world["session"], student)
        for frame in frames:
            ref = frame.get("message_id")
            if isinstance(ref, str) and ref in ids:
                frame = {**frame, "message_id": ids[ref]}
            await ws.send_to(text_data=json.dumps(frame))
            answer = await ws.receive_json_from(timeout=WAIT)
            if answer["type"] == "rated":
                assert frame["message_id"] == ids["REPLY"]
                assert answer["rating"]["helpful"] is frame["helpful"]
                reason = answer["rating"]["reason"]
                assert len(reason) <= ReplyRating.REASON_MAX_CHARS
                assert reason == reason.strip() and "\n" not in reason and "\x00" not in reason
            else:
                assert answer["type"] == "error", answer
                assert answer["code"] in RATING_ERRORS and answer["detail"]
        await ws.send_json_to({"type": "ping"})
        assert (await ws.receive_json_from(timeout=WAIT))["type"] == "pong"
        await ws.disconnect()

    exchange()
    # Whatever was sent: at most one rating, of the student's own tutor reply.
    stored = ratings_of()
    assert len(stored) <= 1
    assert all((r.student_id, r.message_id) == (student.pk, ids["REPLY"]) for r in stored)


# ---- where ratings show: review (teachers of the class only) and the retraining export -------


@pytest.fixture
def class_world(teacher, student, problem):
    from tutor.classes.models import Classroom, Enrollment

    classroom = Classroom.objects.create(name="Algebra 1", teacher=teacher)
    Enrollment.objects.create(classroom=classroom, student=student)
    session, _, reply = dialogue(student, problem)
    TutoringSession.objects.filter(pk=session.pk).update(classroom=classroom)
    ReplyRating.objects.create(
        student=student, message=reply, helpful=False, reason="It <b>confused</b> me"
    )
    return session, reply


def test_teachers_see_students_ratings_in_review(client, teacher, class_world):
    session, _ = class_world
    client.force_login(teacher)
    page = client.get(f"/reviews/sessions/{session.pk}/").text
    assert 'data-student-helpful="false"' in page and "not helpful" in page
    assert "It &lt;b&gt;confused&lt;/b&gt; me" in page  # escaped, never markup
    assert "<b>confused</b>" not in page


def test_review_with_student_ratings_stays_bounded(
    client, teacher, student, problem, class_world, django_assert_max_num_queries
):
    session, _ = class_world
    client.force_login(teacher)
    url = f"/reviews/sessions/{session.pk}/"
    client.get(url)
    with django_assert_max_num_queries(30) as few:
        client.get(url)
    for i in range(10):
        reply = Message.objects.create(session=session, role=Message.Role.TUTOR, text=f"Q{i}?")
        ReplyRating.objects.create(student=student, message=reply, helpful=i % 2 == 0)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(url).text
    assert page.count('review-student-rating"') == 11


def test_other_teachers_and_students_do_not_see_the_review(
    client, other_teacher, student, class_world
):
    session, _ = class_world
    client.force_login(other_teacher)
    assert client.get(f"/reviews/sessions/{session.pk}/").status_code == 404
    client.force_login(student)
    assert client.get(f"/reviews/sessions/{session.pk}/").status_code == 403


def test_the_retraining_export_has_student_rating_records(student, class_world):
    from tutor.retraining.export import build_dataset

    _, reply = class_world
    Message.objects.filter(pk=reply.pk).update(leaked_answer=False)
    result = build_dataset(scope="job-1")
    (record,) = [r for r in result.records if r["kind"] == "student_rating"]
    assert record["helpful"] is False and record["reason"] == "It <b>confused</b> me"
    assert record["tutor_text"] == reply.text and record["turn"] == 1
    assert record["history"] == [{"role": "student", "text": "Help?"}]
    assert record["leaked_answer"] is False
    assert record["student"].startswith("s_") and student.username not in str(record)
    outcome = next(r for r in result.records if r["kind"] == "outcome")
    assert record["student"] == outcome["student"] and record["dialogue"] == outcome["dialogue"]
