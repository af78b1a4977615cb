"""The demo classroom in headless Chromium: the demo teacher logs in as a new user would, finds the
demo class, and its dashboard is drawn from the seeded history; the review of a flagged session
shows the held-back attempt."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from tests.browser.test_dashboard_page import CANVAS_DRAWN
from tutor.demo.seed import DEMO_CLASS_NAME
from tutor.demo.source import mathdial_path
from tutor.dialogues.models import TutoringSession

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not mathdial_path().exists(), reason="shared MathDial data not found"),
]

PASSWORD = "demo-browser-password"


def test_demo_teacher_sees_the_dashboard_with_data(page, asgi_server_without_model):
    call_command("seed_demo", "--password", PASSWORD)
    url = asgi_server_without_model.url
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", "teacher")
    page.fill("#id_password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{url}/")

    page.goto(f"{url}/classes/")
    page.get_by_role("link", name=DEMO_CLASS_NAME).click()
    page.click("#dashboard-link")
    expect(page.locator("#dashboard")).to_have_attribute("data-state", "ready")
    expect(page.locator("h1")).to_have_text(DEMO_CLASS_NAME)

    charts = page.evaluate(
        """() => {
          const c = window.tutorDashboard.charts;
          return {
            mastery: c.mastery.data.datasets.map((d) => d.data.length),
            masteryPoints: c.mastery.data.labels.length,
            solve: c.solve.data.datasets.map((d) => d.data),
          };
        }"""
    )
    assert charts["mastery"] and all(n > 0 for n in charts["mastery"])
    assert charts["masteryPoints"] >= 3
    assert any(any(v for v in values) for values in charts["solve"])
    assert page.evaluate(CANVAS_DRAWN, "mastery-chart") > 500
    assert page.evaluate(CANVAS_DRAWN, "solve-chart") > 500

    # Every student has a row; some need attention (stuck, or behind on a past assignment).
    expect(page.locator("#student-table tbody tr")).to_have_count(22)
    expect(page.locator("#student-table tbody tr", has_text="Sam Student")).to_have_count(1)
    assert page.locator("#student-table td.heat[data-mastery]").count() >= 10
    expect(page.locator("#needs-attention .attention-item").first).to_be_visible()

    # A review from the dashboard's world: the blocked attempt is there for the teacher.
    session = TutoringSession.objects.filter(flags__kind="blocked_leak").first()
    page.goto(f"{url}/reviews/sessions/{session.pk}/")
    expect(page.locator('.review-blocked[data-blocked-reason="answer_leak"]')).to_have_count(1)
    assert page.js_errors == []
