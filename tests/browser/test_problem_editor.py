"""The problem editor in headless Chromium: the live preview renders Markdown and LaTeX through
the chat's sanitising pipeline (KaTeX renders, script tags do not run), "try an answer" shows
the grader's verdict and reasons, and the saved problem renders on its page."""

import pytest
from playwright.sync_api import expect

from tutor.problems.models import Problem

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE_TEXT = (
    "Halve it: $\\frac{1}{2} \\cdot 3$ cups.\n\n"
    "<script>window.pwned = 'script'</script>\n"
    '<img src="x" onerror="window.pwned = \'img\'">\n'
    "[link](javascript:window.pwned='link')"
)


def teacher_page(browser, asgi_server, session_cookie, user):
    context = browser.new_context()
    context.add_cookies(
        [{"name": "sessionid", "value": session_cookie(user), "url": asgi_server.url}]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    return page


def try_answer(page, answer: str) -> None:
    page.fill("#try-answer-input", answer)
    page.click("#try-answer-button")


def test_live_preview_and_try_an_answer(
    browser, asgi_server_without_model, session_cookie, make_user
):
    server = asgi_server_without_model
    teacher = make_user("editor-teacher", role="teacher")
    page = teacher_page(browser, server, session_cookie, teacher)
    page.goto(f"{server.url}/problems/new/")
    expect(page.locator("body")).to_have_attribute("data-problem-editor", "ready")

    # The preview follows the text as it is typed: KaTeX renders, raw HTML shows as text.
    page.fill("#id_text", HOSTILE_TEXT)
    preview = page.locator("#text-preview")
    expect(preview.locator(".katex").first).to_be_visible()
    expect(preview).to_contain_text("<script>window.pwned")
    assert preview.locator("script, img, iframe").count() == 0
    assert page.evaluate("window.pwned") is None
    href = preview.locator("a").first.get_attribute("href") if preview.locator("a").count() else ""
    assert not (href or "").lower().startswith("javascript:")
    page.fill("#id_solution", "$$\\frac{3}{2}$$")
    expect(page.locator("#solution-preview .katex-display")).to_be_visible()

    # Try an answer against the unsaved final answer, as a student would write it.
    page.fill("#id_final_answer", "3/2")
    result = page.locator("#try-answer-result")
    try_answer(page, "1.5")
    expect(result).to_have_attribute("data-status", "correct")
    try_answer(page, "one and a half")
    expect(result).to_have_attribute("data-status", "correct")
    try_answer(page, "1 or 2")
    expect(result).to_have_attribute("data-status", "ambiguous")
    expect(result).to_contain_text("give one answer")
    try_answer(page, "2^2^2^2^2")
    expect(result).to_have_attribute("data-status", "uncheckable")
    expect(result).to_contain_text("more than 3 powers")
    page.check("#id_require_simplest_form")
    try_answer(page, "6/4")
    expect(result).to_have_attribute("data-status", "incorrect")
    expect(result).to_contain_text("simplest form")
    try_answer(page, "<b>x</b>")
    expect(result).to_contain_text("Not correct")
    assert result.locator("b").count() == 0
    # Enter in the try box checks; it does not submit the problem.
    page.fill("#try-answer-input", "3/2")
    page.press("#try-answer-input", "Enter")
    expect(result).to_have_attribute("data-status", "correct")
    assert page.url.endswith("/problems/new/")
    assert not Problem.objects.exists()

    # Saved, the problem renders on its page the same way, scripts still inert.
    page.click("#save-problem")
    expect(page.locator("#problem-text .katex").first).to_be_visible()
    problem = Problem.objects.get()
    assert problem.owner == teacher and problem.require_simplest_form
    assert page.url.endswith(f"/problems/{problem.pk}/")
    expect(page.locator("#problem-text")).to_contain_text("<script>")
    assert page.evaluate("window.pwned") is None
    assert page.js_errors == []


def test_the_editor_shows_why_a_final_answer_is_refused(
    browser, asgi_server_without_model, session_cookie, make_user
):
    server = asgi_server_without_model
    page = teacher_page(
        browser, server, session_cookie, make_user("editor-teacher-2", role="teacher")
    )
    page.goto(f"{server.url}/problems/new/")
    page.fill("#id_text", "Pick a number.")
    page.fill("#id_final_answer", "5 or 6")
    page.fill("#id_solution", "Any.")
    page.click("#save-problem")
    expect(page.locator("#error-final_answer")).to_contain_text("must be one value")
    # The text typed so far is kept and previewed again.
    expect(page.locator("#text-preview")).to_contain_text("Pick a number.")
    try_answer(page, "5")
    result = page.locator("#try-answer-result")
    expect(result).to_have_attribute("data-status", "bad_final_answer")
    expect(result).to_contain_text("must be one value")
    assert not Problem.objects.exists()
