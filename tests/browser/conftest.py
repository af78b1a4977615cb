import os
import shutil

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


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module. Playwright's sync API keeps an event loop in the test
    thread, which trips Django's check for ORM calls inside a loop although the tests' ORM calls
    are plain synchronous code; the check is relaxed only while this module runs."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/install.sh --test-tools")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS]
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


@pytest.fixture
def asgi_server(transactional_db, settings, vllm_server):
    from tutor.asgi import application

    settings.TUTOR_MODEL_BASE_URL = vllm_server.api_base
    settings.TUTOR_MODEL_NAME = vllm_server.served_model_name
    server = LiveASGIServer(application)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def asgi_server_without_model(transactional_db, settings):
    """The ASGI app for pages that never talk to the tutor model (no vLLM is started). The
    model server's address points at a closed port, so a page that does try (loading an
    adapter after a promotion) fails at once instead of reaching some other server."""
    from django.core.cache import cache

    from tutor.asgi import application

    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"
    cache.clear()
    server = LiveASGIServer(application)
    server.start()
    yield server
    server.stop()
    cache.clear()
