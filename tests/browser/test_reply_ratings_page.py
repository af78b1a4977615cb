"""A student rates a tutor reply on the chat page (thumbs down with a reason), the rating is
stored, and it is still shown after a reload. Stored messages: no model server is needed."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tutor.dialogues.models import Message, ReplyRating, TutoringSession

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def student(make_user):
    return make_user("rating-browser")


@pytest.fixture
def dialogue(student, problem):
    session = TutoringSession.objects.create(student=student, problem=problem)
    Message.objects.create(session=session, role=Message.Role.STUDENT, text="Where do I start?")
    reply = Message.objects.create(
        session=session, role=Message.Role.TUTOR, text="What could you do to **both sides**?"
    )
    return session, reply


def log_in(page, server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    page.context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.url}])


def test_a_student_rates_a_reply_and_the_rating_persists(
    page, asgi_server_without_model, student, dialogue
):
    server = asgi_server_without_model
    session, reply = dialogue
    log_in(page, server, student)
    page.goto(f"{server.url}/sessions/{session.pk}/")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")

    tutor = page.locator(f'.message--tutor[data-message-id="{reply.pk}"]')
    group = tutor.get_by_role("group", name="Rate this reply")
    up = group.get_by_role("button", name="This reply helped")
    down = group.get_by_role("button", name="This reply did not help")
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(down).to_have_attribute("aria-pressed", "false")
    # Only tutor replies can be rated.
    expect(page.locator(".message--student .message__rating")).to_have_count(0)

    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    reason = group.get_by_label("Why? (optional)")
    expect(reason).to_be_visible()
    reason.fill("Too vague, I need a hint")
    group.get_by_role("button", name="Send").click()
    expect(group.get_by_role("status")).to_have_text("Thanks for telling us why.")

    stored = ReplyRating.objects.get(message=reply)
    assert (stored.student_id, stored.helpful, stored.reason) == (
        student.pk,
        False,
        "Too vague, I need a hint",
    )

    page.reload()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(reason).to_have_value("Too vague, I need a hint")

    # Changing one's mind changes the one rating.
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(down).to_have_attribute("aria-pressed", "false")
    assert ReplyRating.objects.filter(message=reply).count() == 1
    assert ReplyRating.objects.get(message=reply).helpful is True
    assert page.js_errors == []
