"""The teacher's review page in headless Chromium: a rating is saved, a flag appears live."""

import threading
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect

from tests.support.waiting import wait_for
from tutor.classes.models import Classroom
from tutor.dialogues.models import Message, TutoringSession
from tutor.reviews import services
from tutor.reviews.models import Flag, TurnRating

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
HOSTILE = '<img src=x onerror="window.__pwned = 1">'


@pytest.fixture
def teacher(make_user):
    return make_user("browser-teacher", role="teacher", password="correct horse")


@pytest.fixture
def session(teacher, make_user, problem):
    classroom = Classroom.objects.create(name="7B", teacher=teacher)
    session = TutoringSession.objects.create(
        student=make_user("pupil"), problem=problem, classroom=classroom
    )
    Message.objects.create(session=session, role="student", text=f"Is it $x^2$? {HOSTILE}")
    Message.objects.create(
        session=session,
        role="tutor",
        text="Try $$\\frac{25-7}{3}$$ and **think**.",
        thinking="The answer is 6; do not say it.",
    )
    return session


def log_in(page, asgi_server):
    page.goto(f"{asgi_server.url}/accounts/login/")
    page.fill("#id_username", "browser-teacher")
    page.fill("#id_password", "correct horse")
    page.click("#login-button")
    page.wait_for_url(f"{asgi_server.url}/")


def raise_flag_like_a_worker(session, message):
    """Raise a flag from another thread, as the Celery worker or another socket would (the
    test thread runs Playwright's event loop, where async_to_sync may not be used)."""
    result = {}

    def work():
        try:
            result["flag"], _ = services.raise_flag(
                session,
                Flag.Kind.UNSAFE_CONTENT,
                Flag.Severity.HIGH,
                message=message,
                category="self-harm",
                detail="Student message matched 'kill myself' (self-harm).",
            )
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    return result["flag"]


def test_teacher_rates_a_turn_and_sees_a_flag_live(page, asgi_server, teacher, session):
    tutor_turn = session.messages.get(role="tutor")
    student_turn = session.messages.get(role="student")
    log_in(page, asgi_server)
    page.goto(f"{asgi_server.url}/reviews/sessions/{session.pk}/")
    expect(page.locator("#review")).to_have_attribute("data-ready", "true")

    # The transcript goes through the chat's Markdown/KaTeX/DOMPurify pipeline.
    tutor = page.locator(f'.review-message[data-message-id="{tutor_turn.pk}"]')
    expect(tutor.locator(".review-message__body .katex").first).to_be_visible()
    expect(tutor.locator(".review-message__body strong")).to_have_text("think")
    expect(tutor.locator("details.review-thinking")).not_to_have_attribute("open", "")
    tutor.locator("details.review-thinking summary").click()
    expect(tutor.locator(".review-thinking__body")).to_contain_text("do not say it")

    # Rate the turn: saved without a reload.
    form = tutor.locator(".rating-form")
    form.locator('select[name="helpful"]').select_option("4")
    form.locator('select[name="no_answer_reveal"]').select_option("5")
    form.locator('select[name="correct"]').select_option("5")
    form.locator('select[name="encourages_thinking"]').select_option("3")
    form.locator('select[name="teacher_move"]').select_option("focus")
    form.locator('textarea[name="comment"]').fill("Good nudge.")
    page.evaluate("window.__sameDocument = true")
    form.locator(".rating-save").click()
    expect(form.locator(".rating-status")).to_have_text("Saved")
    rating = wait_for(lambda: TurnRating.objects.filter(message=tutor_turn, rater=teacher).first())
    assert (rating.helpful, rating.no_answer_reveal, rating.correct) == (4, 5, 5)
    assert (rating.encourages_thinking, rating.teacher_move) == (3, "focus")
    assert rating.comment == "Good nudge."
    assert page.evaluate("window.__sameDocument") is True  # no page reload

    # A high-severity flag raised while the page is open shows up at once.
    expect(page.locator("body")).to_have_attribute("data-flag-socket", "connected")
    expect(page.locator("#flag-count")).to_be_hidden()
    flag = raise_flag_like_a_worker(session, student_turn)
    toast = page.locator(f'.toast[data-flag-id="{flag.pk}"]')
    expect(toast).to_be_visible(timeout=10_000)
    expect(toast).to_contain_text("High-severity flag")
    expect(toast).to_contain_text("self-harm")
    expect(toast.locator("a")).to_have_attribute(
        "href", f"/reviews/sessions/{session.pk}/#message-{student_turn.pk}"
    )
    expect(page.locator("#flag-count")).to_have_text("1")

    # "This turn gave the answer away" in one click.
    form.locator(".gave-away").click()
    expect(form.locator(".gave-away")).to_be_disabled()
    wait_for(lambda: Message.objects.get(pk=tutor_turn.pk).leaked_answer is True)
    rating = TurnRating.objects.get(message=tutor_turn)
    assert (rating.gave_away_answer, rating.no_answer_reveal, rating.helpful) == (True, 1, 4)
    expect(form.locator('select[name="no_answer_reveal"]')).to_have_value("1")

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review.png"), full_page=True)

    # The flag stays listed until resolved.
    page.goto(f"{asgi_server.url}/reviews/flags/")
    item = page.locator(f'.flag[data-flag-id="{flag.pk}"]')
    expect(item).to_be_visible()
    item.locator(".resolve-button").click()
    expect(page.locator(f'.flag[data-flag-id="{flag.pk}"]')).to_have_count(0)
    assert Flag.objects.get(pk=flag.pk).resolved_by == teacher

    assert page.evaluate("window.__pwned") is None
    assert page.js_errors == []
