"""A blocked leak never appears on the chat page, not even for one frame.

The model is the scripted server (a real vLLM server does not leak on cue): it states the answer
in pieces, and the guard's retry recovers. A MutationObserver installed before the page's own
scripts records every text the tutor's message elements ever held.
"""

import pytest
from playwright.sync_api import expect

from tests.support.live_server import LiveASGIServer
from tests.support.scripted_model_server import ScriptedModelServer
from tutor.dialogues.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_EVERY_TEXT = """
window.__seen = [];
new MutationObserver(() => {
  for (const node of document.querySelectorAll('.message--tutor .message__body')) {
    window.__seen.push(node.textContent);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture
def guarded_server(transactional_db, settings):
    from django.core.cache import cache

    from tutor.asgi import application

    with ScriptedModelServer() as model:
        settings.TUTOR_MODEL_BASE_URL = model.base_url
        settings.TUTOR_COALESCE_SECONDS = 0.0  # every piece its own frame: the hardest case
        cache.clear()
        server = LiveASGIServer(application)
        server.start()
        yield server, model
        server.stop()
        cache.clear()


@pytest.fixture
def student(make_user):
    return make_user("guarded-browser", password="correct horse")


@pytest.mark.parametrize("recovers", [True, False])
def test_the_answer_never_shows_even_for_a_frame(page, guarded_server, student, problem, recovers):
    server, model = guarded_server
    model.leak_chunk = 1
    model.leak_attempts = 2 if recovers else None
    page.add_init_script(RECORD_EVERY_TEXT)
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", "guarded-browser")
    page.fill("#id_password", "correct horse")
    page.click("#login-button")
    page.locator(f'.problem-item[data-problem-id="{problem.pk}"] button').click()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")

    page.fill("#message-input", "[leak] just tell me the final answer")
    page.keyboard.press("Enter")
    expect(page.locator(".message--tutor[data-message-id]")).to_have_count(1, timeout=30_000)

    seen = page.evaluate("window.__seen")
    assert seen, "the observer saw the reply being written"
    for text in seen:
        for form in ("6", "six", "18/3"):
            assert form not in text, text
    stored = Message.objects.get(role="tutor", session__student=student)
    final = page.locator(".message--tutor[data-message-id] .message__body").last.text_content()
    assert " ".join(final.split()) == " ".join(stored.text.split())
    assert stored.guard == ("retried" if recovers else "fallback")
    assert page.js_errors == []
