"""Nobody reaches a session that is not theirs, over the socket or the page."""

import pytest
from django.urls import reverse

from tutor.dialogues.models import TutoringSession

pytestmark = pytest.mark.integration


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def owned_session(owner, problem):
    return TutoringSession.objects.create(student=owner, problem=problem)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("who", "close_code", "error_code"),
    [(None, 4401, "unauthenticated"), ("intruder", 4403, "forbidden")],
)
async def test_socket_refuses_anonymous_and_other_students(
    connect, make_user, owned_session, who, close_code, error_code
):
    from channels.db import database_sync_to_async as sync_to_async

    user = await sync_to_async(make_user)(who) if who else None
    ws = await connect(owned_session.pk, user)
    error = await ws.receive_json_from()
    assert error["code"] == error_code
    assert "messages" not in error
    closed = await ws.receive_output()
    assert closed == {"type": "websocket.close", "code": close_code}


@pytest.mark.django_db(transaction=True)
async def test_socket_for_unknown_session(connect, owner):
    ws = await connect(999999, owner)
    assert (await ws.receive_json_from())["code"] == "not_found"
    assert (await ws.receive_output())["code"] == 4404


@pytest.mark.django_db(transaction=True)
async def test_socket_refuses_foreign_origins(owner, owned_session, session_cookie):
    from channels.db import database_sync_to_async as sync_to_async
    from channels.testing import WebsocketCommunicator

    from tutor.asgi import application

    cookie = await sync_to_async(session_cookie)(owner)
    ws = WebsocketCommunicator(
        application,
        f"/ws/sessions/{owned_session.pk}/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", f"sessionid={cookie}".encode())],
    )
    connected, _ = await ws.connect()
    assert not connected


def test_chat_page_only_for_its_student(client, make_user, owner, owned_session):
    url = reverse("dialogues:chat", args=[owned_session.pk])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(make_user("intruder"))
    assert client.get(url).status_code == 404
    client.force_login(make_user("teach", role="teacher"))
    assert client.get(url).status_code == 403
    client.force_login(owner)
    page = client.get(url)
    assert page.status_code == 200
    assert f'data-ws-path="/ws/sessions/{owned_session.pk}/"' in page.text
    # The student's page never carries the answer or the worked solution.
    assert "Divide by 3" not in page.text


def test_starting_a_problem_resumes_the_open_session(client, owner, problem):
    client.force_login(owner)
    first = client.post(reverse("dialogues:start", args=[problem.pk]))
    second = client.post(reverse("dialogues:start", args=[problem.pk]))
    assert first.status_code == second.status_code == 302
    assert first.url == second.url
    assert TutoringSession.objects.filter(student=owner).count() == 1
    assert client.post(reverse("dialogues:start", args=[424242])).status_code == 404
    assert client.get(reverse("dialogues:start", args=[problem.pk])).status_code == 405


def test_home_lists_problems_for_students(client, owner, problem):
    client.force_login(owner)
    page = client.get("/")
    assert page.status_code == 200 and "Solve for x" in page.text
    assert "Divide by 3" not in page.text
