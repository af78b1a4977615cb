"""A version's page shows its evaluation dialogues beside those of the version serving everyone,
on the same held-out problems, so an admin reads what changed before promoting; the compare page
does the same for any two versions. Model text is shown as text, never run as markup."""

import copy

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.support.retraining import GOOD, finished_eval, make_version
from tutor.retraining import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse"
HOSTILE = '<img src=x onerror="window.__pwned = 1">'


def with_dialogues(tutor_line: str, ids: list[str], leaked: bool) -> dict:
    report = copy.deepcopy(GOOD)
    report["tasks"]["interactive"]["items"] = [
        {
            "id": item_id,
            "problem_text": f"Problem {item_id}: how many apples?",
            "transcript": [
                ["student", "I'm stuck on this one."],
                ["tutor", f"{tutor_line} ({item_id}) {HOSTILE}"],
                ["student", "Oh, I add them."],
            ],
            "leaked": leaked,
            "gain": 0.5,
        }
        for item_id in ids
    ]
    return report


def test_five_dialogues_of_each_version_side_by_side(page, asgi_server_without_model, make_user):
    server = asgi_server_without_model
    admin = make_user("root", role="admin", password=PASSWORD)
    base = services.base_version()
    candidate = make_version("candidate-1")
    ids = [f"problem-{n}" for n in range(1, 9)]
    finished_eval(base, with_dialogues("The answer is 12.", ids, leaked=True))
    finished_eval(candidate, with_dialogues("What do you get if you add?", ids[1:], leaked=False))

    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-button")
    page.goto(server.url + reverse("retraining:version_detail", args=[candidate.pk]))

    problems = page.locator("#side-by-side .sbs-problem")
    expect(problems).to_have_count(5)
    first = problems.first
    # Only problems both evaluations held a dialogue on, the same for both columns.
    assert first.get_attribute("data-item-id") == "problem-2"
    columns = first.locator(".sbs-dialogue")
    expect(columns).to_have_count(2)
    expect(columns.nth(0)).to_contain_text("The answer is 12. (problem-2)")
    expect(columns.nth(0)).to_contain_text("(serving)")
    expect(columns.nth(0).locator(".badge--leak")).to_have_count(1)
    expect(columns.nth(1)).to_contain_text("What do you get if you add? (problem-2)")
    expect(columns.nth(1).locator(".badge--leak")).to_have_count(0)
    expect(first).to_contain_text("Problem problem-2: how many apples?")
    assert page.evaluate("window.__pwned") is None
    expect(columns.nth(1)).to_contain_text(HOSTILE)

    page.goto(server.url + reverse("retraining:compare") + f"?a={base.pk}&b={candidate.pk}")
    expect(page.locator("#side-by-side .sbs-problem")).to_have_count(5)
    assert page.js_errors == []
