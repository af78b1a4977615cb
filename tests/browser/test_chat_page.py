"""The student chat in headless Chromium, against a live ASGI server and a real vLLM server."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tutor.dialogues.models import Message, TutoringSession

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.fixture
def student(make_user):
    return make_user("browser-student", password="correct horse")


def log_in(page, asgi_server, username="browser-student", password="correct horse"):
    page.goto(f"{asgi_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-button")
    expect(page.locator(".problem-list")).to_be_visible()


def open_chat(page, asgi_server, problem):
    page.locator(f'.problem-item[data-problem-id="{problem.pk}"] button').click()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")


def test_student_chats_sees_streaming_math_and_no_script_runs(
    page, asgi_server, student, problem, settings
):
    settings.TUTOR_MAX_REPLY_TOKENS = 120
    # An earlier tutor turn with math and hostile HTML, as a model could write it.
    session = TutoringSession.objects.create(student=student, problem=problem)
    Message.objects.create(session=session, role="student", text="hi")
    Message.objects.create(
        session=session,
        role="tutor",
        text=f"Look at $$\\frac{{25-7}}{{3}}$$ and **think**. {HOSTILE}",
    )
    log_in(page, asgi_server)
    open_chat(page, asgi_server, problem)

    earlier = page.locator(".message--tutor").first
    expect(earlier.locator(".katex").first).to_be_visible()
    expect(earlier.locator("strong")).to_have_text("think")

    page.fill("#message-input", f"Is it $x^2 = 36$? {HOSTILE}")
    page.keyboard.press("Enter")
    mine = page.locator(".message--student[data-message-id]").last
    expect(mine.locator(".katex").first).to_be_visible(timeout=10_000)

    # Tutor text arrives while the reply is still being written...
    streaming = page.locator('.message--tutor[data-streaming="true"]')
    expect(streaming).to_have_count(1, timeout=60_000)
    page.wait_for_function(
        "() => { const m = document.querySelector('.message--tutor[data-streaming=\"true\"]');"
        " return m && m.textContent.trim().length > 0; }",
        timeout=60_000,
    )
    # ...and ends as the stored message.
    expect(streaming).to_have_count(0, timeout=120_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)

    assert page.evaluate("window.__pwned") is None
    assert page.locator("#transcript script").count() == 0
    assert page.js_errors == []
    stored = list(session.messages.order_by("id"))
    assert [m.role for m in stored] == ["student", "tutor", "student", "tutor"]
    last = page.locator(".message--tutor[data-message-id]").last
    assert last.get_attribute("data-message-id") == str(stored[-1].pk)
    assert stored[-1].text


def test_dropped_connection_reconnects_and_the_transcript_is_whole(
    page, asgi_server, student, problem, settings
):
    settings.TUTOR_MAX_REPLY_TOKENS = 20
    log_in(page, asgi_server)
    open_chat(page, asgi_server, problem)
    page.fill("#message-input", "Where do I start?")
    page.keyboard.press("Enter")
    expect(page.locator(".message--tutor[data-message-id]")).to_have_count(1, timeout=120_000)

    asgi_server.stop()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "reconnecting")
    # Written while offline: kept and sent once the socket is back.
    page.fill("#message-input", "Is it 6?")
    page.keyboard.press("Enter")
    asgi_server.start()
    expect(page.locator("#connection-status")).to_have_attribute(
        "data-state", "connected", timeout=30_000
    )
    expect(page.locator(".message--tutor[data-message-id]")).to_have_count(2, timeout=120_000)
    texts = [m.text for m in Message.objects.filter(session__student=student, role="student")]
    assert texts == ["Where do I start?", "Is it 6?"]
    assert page.locator(".message--student").count() == 2


def test_final_answer_is_checked_and_shown(page, asgi_server, student, problem):
    log_in(page, asgi_server)
    open_chat(page, asgi_server, problem)
    page.fill("#answer-input", "5")
    page.click("#answer-button")
    expect(page.locator("#outcome")).to_have_attribute("data-outcome", "incorrect")
    expect(page.locator("#outcome")).to_contain_text("Not quite")
    page.fill("#answer-input", "12/2")
    page.click("#answer-button")
    expect(page.locator("#outcome")).to_have_attribute("data-outcome", "solved")
    expect(page.locator("#outcome")).to_contain_text("Correct")
    expect(page.locator("#send-button")).to_be_disabled()
    session = TutoringSession.objects.get(student=student, problem=problem)
    assert (session.outcome, session.status) == ("solved", "closed")
    assert [a.correct for a in session.attempts.all()] == [False, True]
