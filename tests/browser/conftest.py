import os
import shutil
import tempfile

import pytest

from tests.support.live_server import LiveASGIServer

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/install.sh --test-tools")
    profile = tempfile.mkdtemp(prefix="tutor-chromium-")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS]
        )
        yield browser
        browser.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser, monkeypatch):
    # Playwright's sync API keeps an event loop in the test thread, which trips Django's check
    # for ORM calls inside a loop; the test body's ORM calls are plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


@pytest.fixture
def live_server(transactional_db, settings, vllm_server):
    from tutor.asgi import application

    settings.TUTOR_MODEL_BASE_URL = vllm_server.base_url
    settings.TUTOR_MODEL_NAME = vllm_server.served_model_name
    server = LiveASGIServer(application)
    server.start()
    yield server
    server.stop()
