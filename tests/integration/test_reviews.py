"""Review pages, ratings, flags and live flag notifications, against PostgreSQL and Redis."""

import asyncio
import json
import uuid

import pytest
from channels.db import database_sync_to_async as sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from tests.support.waiting import wait_for
from tutor.classes.models import Classroom
from tutor.dialogues import services as dialogue_services
from tutor.dialogues.models import Message, TutoringSession
from tutor.reviews import services
from tutor.reviews.models import Flag, TurnRating

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def student(make_user):
    return make_user("stu")


@pytest.fixture
def classroom(teacher):
    return Classroom.objects.create(name="7B", teacher=teacher)


@pytest.fixture
def session(student, problem, classroom):
    session = TutoringSession.objects.create(student=student, problem=problem, classroom=classroom)
    Message.objects.create(session=session, role="student", text="How do I start?")
    return session


@pytest.fixture
def tutor_turn(session):
    return Message.objects.create(
        session=session,
        role="tutor",
        text="What is $25 - 7$? Then divide by 3 to get **6**.",
        thinking="The answer is 6; hint at subtraction first.",
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client, url, data):
    return client.post(url, data=json.dumps(data), content_type="application/json")


# ---- the review page --------------------------------------------------------------------------


def test_teacher_sees_transcript_thinking_and_rating_forms(teacher, session, tutor_turn):
    Flag.objects.create(session=session, kind="unsafe_content", severity="high", category="x")
    page = client_for(teacher).get(reverse("reviews:session", args=[session.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "How do I start?" in html
    assert "The answer is 6; hint at subtraction first." in html
    assert '<details class="review-thinking">' in html
    assert f'data-rate-url="/reviews/messages/{tutor_turn.pk}/rating/"' in html
    assert html.count('class="rating-form"') == 1  # tutor turns only
    assert "This turn gave the answer away" in html
    assert "Unsafe content" in html


def test_admin_sees_every_session(make_user, session):
    admin = make_user("boss", role="admin")
    assert client_for(admin).get(reverse("reviews:session", args=[session.pk])).status_code == 200


def test_free_practice_sessions_are_not_visible_to_teachers(teacher, student, problem):
    practice = TutoringSession.objects.create(student=student, problem=problem)
    assert (
        client_for(teacher).get(reverse("reviews:session", args=[practice.pk])).status_code == 404
    )


# ---- ratings ----------------------------------------------------------------------------------


def test_rating_is_saved_and_updated_in_place(teacher, session, tutor_turn):
    client = client_for(teacher)
    url = reverse("reviews:rate", args=[tutor_turn.pk])
    first = {
        "helpful": 4,
        "no_answer_reveal": 2,
        "correct": 5,
        "encourages_thinking": 3,
        "teacher_move": "telling",
        "comment": "Says the answer at the end.",
    }
    response = post_json(client, url, first)
    assert response.status_code == 200, response.content
    assert response.json()["rating"]["teacher_move"] == "telling"
    response = post_json(client, url, {**first, "helpful": "2", "teacher_move": "probing"})
    assert response.status_code == 200
    rating = TurnRating.objects.get()
    assert (rating.message_id, rating.rater_id) == (tutor_turn.pk, teacher.pk)
    assert (rating.helpful, rating.no_answer_reveal, rating.correct) == (2, 2, 5)
    assert (rating.encourages_thinking, rating.teacher_move) == (3, "probing")
    assert rating.comment == "Says the answer at the end."

    listed = client.get(reverse("reviews:ratings", args=[session.pk])).json()
    assert listed["session"] == session.pk
    assert [(r["message_id"], r["helpful"], r["teacher_move"]) for r in listed["ratings"]] == [
        (tutor_turn.pk, 2, "probing")
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"helpful": 6},
        {"helpful": 0},
        {"correct": "lots"},
        {"correct": 2.5},
        {"teacher_move": "shouting"},
        {"comment": "x" * 5000},
        [1, 2],
    ],
)
def test_bad_ratings_are_refused(teacher, tutor_turn, body):
    response = post_json(client_for(teacher), reverse("reviews:rate", args=[tutor_turn.pk]), body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert not TurnRating.objects.exists()


def test_ratings_need_csrf(teacher, tutor_turn):
    client = Client(enforce_csrf_checks=True)
    client.force_login(teacher)
    response = post_json(client, reverse("reviews:rate", args=[tutor_turn.pk]), {"helpful": 3})
    assert response.status_code == 403


def test_student_turns_cannot_be_rated(teacher, session):
    student_turn = session.messages.get(role="student")
    response = post_json(
        client_for(teacher), reverse("reviews:rate", args=[student_turn.pk]), {"helpful": 3}
    )
    assert response.status_code == 404


def test_gave_the_answer_away_click(teacher, session, tutor_turn):
    client = client_for(teacher)
    response = client.post(reverse("reviews:gave_away", args=[tutor_turn.pk]))
    assert response.status_code == 200
    assert response.json()["flag"]["kind"] == "answer_leak"
    rating = TurnRating.objects.get(message=tutor_turn, rater=teacher)
    assert rating.gave_away_answer is True and rating.no_answer_reveal == 1
    tutor_turn.refresh_from_db()
    assert tutor_turn.leaked_answer is True
    flag = Flag.objects.get(message=tutor_turn)
    assert (flag.kind, flag.severity) == ("answer_leak", "medium")
    assert "Teacher-confirmed" in flag.detail
    # A second click changes nothing more.
    client.post(reverse("reviews:gave_away", args=[tutor_turn.pk]))
    assert Flag.objects.filter(message=tutor_turn).count() == 1
    assert TurnRating.objects.count() == 1


def test_teacher_confirms_an_automatic_leak_flag(teacher, session, tutor_turn):
    services.flag_answer_leak(tutor_turn, "6")
    client_for(teacher).post(reverse("reviews:gave_away", args=[tutor_turn.pk]))
    flag = Flag.objects.get(message=tutor_turn)
    assert "'6'" in flag.detail and "Teacher-confirmed" in flag.detail


# ---- the flags list ---------------------------------------------------------------------------


def test_flags_list_filters_orders_and_resolves(teacher, other_teacher, student, problem, session):
    low = Flag.objects.create(session=session, kind="unsafe_content", severity="low")
    high = Flag.objects.create(session=session, kind="unsafe_content", severity="high")
    medium = Flag.objects.create(session=session, kind="answer_leak", severity="medium")
    elsewhere = TutoringSession.objects.create(
        student=student,
        problem=problem,
        classroom=Classroom.objects.create(name="8C", teacher=other_teacher),
    )
    hidden = Flag.objects.create(session=elsewhere, kind="unsafe_content", severity="high")
    client = client_for(teacher)

    page = client.get(reverse("reviews:flags"))
    ids = [f.pk for f in page.context["page"].object_list]
    assert ids == [high.pk, medium.pk, low.pk]
    assert hidden.pk not in ids
    page = client.get(reverse("reviews:flags"), {"kind": "answer_leak"})
    assert [f.pk for f in page.context["page"].object_list] == [medium.pk]
    page = client.get(reverse("reviews:flags"), {"severity": "high"})
    assert [f.pk for f in page.context["page"].object_list] == [high.pk]

    response = client.post(reverse("reviews:resolve", args=[high.pk]))
    assert response.status_code == 302
    high.refresh_from_db()
    assert high.resolved_at is not None and high.resolved_by == teacher
    open_ids = [f.pk for f in client.get(reverse("reviews:flags")).context["page"].object_list]
    assert high.pk not in open_ids
    resolved = client.get(reverse("reviews:flags"), {"status": "resolved"})
    assert [f.pk for f in resolved.context["page"].object_list] == [high.pk]


# ---- role boundaries --------------------------------------------------------------------------


def test_another_teacher_gets_404_everywhere(other_teacher, session, tutor_turn):
    flag = Flag.objects.create(session=session, kind="unsafe_content", severity="high")
    client = client_for(other_teacher)
    assert client.get(reverse("reviews:session", args=[session.pk])).status_code == 404
    assert client.get(reverse("reviews:ratings", args=[session.pk])).status_code == 404
    assert (
        post_json(client, reverse("reviews:rate", args=[tutor_turn.pk]), {"helpful": 1}).status_code
        == 404
    )
    assert client.post(reverse("reviews:gave_away", args=[tutor_turn.pk])).status_code == 404
    assert client.post(reverse("reviews:resolve", args=[flag.pk])).status_code == 404
    flag.refresh_from_db()
    assert flag.resolved_at is None
    assert not TurnRating.objects.exists()
    assert list(client.get(reverse("reviews:flags")).context["page"].object_list) == []


def test_students_get_403_and_anonymous_users_log_in(student, session, tutor_turn):
    flag = Flag.objects.create(session=session, kind="unsafe_content", severity="high")
    client = client_for(student)  # even the session's own student
    assert client.get(reverse("reviews:session", args=[session.pk])).status_code == 403
    assert client.get(reverse("reviews:ratings", args=[session.pk])).status_code == 403
    assert client.get(reverse("reviews:flags")).status_code == 403
    assert client.get(reverse("reviews:sessions")).status_code == 403
    rate = post_json(client, reverse("reviews:rate", args=[tutor_turn.pk]), {"helpful": 1})
    assert rate.status_code == 403
    assert client.post(reverse("reviews:resolve", args=[flag.pk])).status_code == 403
    anonymous = Client().get(reverse("reviews:session", args=[session.pk]))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


# ---- automatic flags --------------------------------------------------------------------------


def test_the_worker_flags_a_leaking_turn_once(worker, session):
    reply = dialogue_services.TutorReply(
        text="Divide 18 by 3 and you get 6.", thinking="", partial=False
    )
    leaking = dialogue_services.store_tutor_reply(session, reply)
    reply = dialogue_services.TutorReply(text="What is 25 - 7?", thinking="", partial=False)
    guiding = dialogue_services.store_tutor_reply(session, reply)
    flag = wait_for(lambda: Flag.objects.filter(message=leaking).first())
    assert (flag.kind, flag.severity, flag.session_id) == ("answer_leak", "medium", session.pk)
    assert "'6'" in flag.detail
    wait_for(lambda: Message.objects.get(pk=guiding.pk).leaked_answer is False)
    assert not Flag.objects.filter(message=guiding).exists()
    # Checking again (a re-run task) does not raise a second flag.
    dialogue_services.check_turn(Message.objects.get(pk=leaking.pk))
    assert Flag.objects.filter(message=leaking).count() == 1


# ---- the teacher socket -----------------------------------------------------------------------


async def teacher_socket(user, session_cookie) -> WebsocketCommunicator:
    from tutor.asgi import application

    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        cookie = await sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/teacher/", headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def test_unsafe_student_message_flags_and_notifies_the_teacher_live(
    connect, session_cookie, model_server, teacher, other_teacher, student, session
):
    mine = await teacher_socket(teacher, session_cookie)
    assert await mine.receive_json_from() == {"type": "hello", "open_flags": 0}
    theirs = await teacher_socket(other_teacher, session_cookie)
    assert (await theirs.receive_json_from())["type"] == "hello"

    chat = await connect(session.pk, student)
    await chat.receive_json_from()
    await chat.send_json_to(
        {"type": "message", "text": "I want to kill myself", "client_id": str(uuid.uuid4())}
    )
    echo = await chat.receive_json_from()
    assert echo["type"] == "message"

    frame = await mine.receive_json_from(timeout=5)
    assert frame["type"] == "flag"
    flag = frame["flag"]
    assert (flag["kind"], flag["severity"], flag["category"]) == (
        "unsafe_content",
        "high",
        "self-harm",
    )
    assert flag["session_id"] == session.pk and flag["message_id"] == echo["message"]["id"]
    assert flag["review_url"] == f"/reviews/sessions/{session.pk}/"
    stored = await sync_to_async(Flag.objects.get)(pk=flag["id"])
    assert stored.message_id == echo["message"]["id"]
    # The other teacher's socket hears nothing.
    assert await theirs.receive_nothing(timeout=0.5)

    # The reply still comes.
    while (await chat.receive_json_from(timeout=10))["type"] != "reply.end":
        pass
    # A harmless message raises nothing.
    await chat.send_json_to({"type": "message", "text": "kill the x term?"})
    await chat.receive_json_from()
    assert await mine.receive_nothing(timeout=0.5)
    assert await sync_to_async(Flag.objects.count)() == 1
    for ws in (mine, theirs, chat):
        await ws.disconnect()


async def test_worker_side_high_flags_reach_teacher_and_admins(
    session_cookie, make_user, teacher, session
):
    admin = await sync_to_async(make_user)("boss", role="admin")
    mine = await teacher_socket(teacher, session_cookie)
    admins = await teacher_socket(admin, session_cookie)
    await mine.receive_json_from()
    await admins.receive_json_from()
    message = await sync_to_async(session.messages.first)()

    def raise_it():
        return services.raise_flag(session, "unsafe_content", "high", message=message)

    flag, created = await sync_to_async(raise_it)()
    assert created
    for ws in (mine, admins):
        frame = await ws.receive_json_from(timeout=5)
        assert frame["flag"]["id"] == flag.pk
    # Medium flags are listed but not pushed.
    await sync_to_async(services.raise_flag)(session, "answer_leak", "medium")
    assert await mine.receive_nothing(timeout=0.5)
    for ws in (mine, admins):
        await ws.disconnect()


@pytest.mark.parametrize(("who", "close_code"), [(None, 4401), ("student", 4403)])
async def test_teacher_socket_refuses_students_and_anonymous(
    session_cookie, student, who, close_code
):
    ws = await teacher_socket(student if who else None, session_cookie)
    assert (await ws.receive_json_from())["type"] == "error"
    assert await ws.receive_output() == {"type": "websocket.close", "code": close_code}


async def test_moderation_does_not_hold_up_the_echo(connect, model_server, student, session):
    chat = await connect(session.pk, student)
    await chat.receive_json_from()
    started = asyncio.get_running_loop().time()
    await chat.send_json_to({"type": "message", "text": "they keep bullying me " * 50})
    assert (await chat.receive_json_from())["type"] == "message"
    assert asyncio.get_running_loop().time() - started < 1.0
    flag = await sync_to_async(Flag.objects.get)()
    assert (flag.category, flag.severity) == ("abuse", "medium")
    while (await chat.receive_json_from(timeout=10))["type"] != "reply.end":
        pass
    await chat.disconnect()
