"""Every URL of the project that accepts POST refuses one without a CSRF token.

The URL patterns come from the resolver (see test_role_sweep.py, which also builds the
objects their arguments are filled from), so a new form or action is swept without being
listed; the test fails until POST_AS says who may post there.
"""

from __future__ import annotations

import pytest

from tests.integration.test_role_sweep import build_world, client_for, sweep_urls

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# Who may post to each URL that accepts POST: the sweep logs in as them, so a 403 can only
# come from the missing token. URLs that take only GET (405 to a POST) need no entry.
STUDENT, TEACHER, ADMIN = "student", "teacher", "admin"
POST_AS = {
    "home": STUDENT,
    "signup": STUDENT,
    "password_change": STUDENT,
    "password_reset": STUDENT,
    "password_reset_confirm": STUDENT,
    "classes:roster_import": TEACHER,
    "problems:create": TEACHER,
    "problems:edit": TEACHER,
    "problems:import": TEACHER,
    "problems:check": TEACHER,
    "problems:archive": TEACHER,
    "problems:restore": TEACHER,
    "login": STUDENT,
    "logout": STUDENT,
    "healthz": STUDENT,
    "dialogues:start": STUDENT,
    "dialogues:chat": STUDENT,
    "classes:join": STUDENT,
    "classes:start_problem": STUDENT,
    "classes:list": TEACHER,
    "classes:create": TEACHER,
    "classes:detail": TEACHER,
    "classes:edit": TEACHER,
    "classes:regenerate_code": TEACHER,
    "classes:add_student": TEACHER,
    "classes:remove_student": TEACHER,
    "classes:export": TEACHER,
    "classes:assignment_create": TEACHER,
    "classes:assignment_edit": TEACHER,
    "classes:assignment_delete": TEACHER,
    "reviews:rate": TEACHER,
    "reviews:gave_away": TEACHER,
    "reviews:resolve": TEACHER,
    "dashboards:class": TEACHER,
    "dashboards:class_summary": TEACHER,
    "dashboards:class_mastery": TEACHER,
    "retraining:jobs": ADMIN,
    "retraining:job_new": ADMIN,
    "retraining:job_detail": ADMIN,
    "retraining:job_progress": ADMIN,
    "retraining:job_cancel": ADMIN,
    "retraining:job_resume": ADMIN,
    "retraining:versions": ADMIN,
    "retraining:versions_json": ADMIN,
    "retraining:compare": ADMIN,
    "retraining:version_detail": ADMIN,
    "retraining:version_evaluate": ADMIN,
    "retraining:version_promote": ADMIN,
    "retraining:rollback": ADMIN,
    "retraining:eval_progress": ADMIN,
}


def poster_for(key: str) -> str | None:
    # Every page of the Django admin is for staff: the admin role.
    if key.startswith(("admin:", "admin/")):
        return ADMIN
    return POST_AS.get(key)


@pytest.fixture
def world(make_user, problem, settings):
    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"
    return build_world(make_user, problem)


def accepts_post(client, url: str) -> bool:
    """Whether the view takes POST, asked with OPTIONS (nothing is changed): a view limited to
    some methods answers 405 or lists them in ``Allow``; one with no limit runs as for GET and
    would take a POST too."""
    response = client.options(url)
    allow = response.get("Allow")
    if allow is None:
        assert response.status_code != 405, url
        return True
    return "POST" in {method.strip().upper() for method in allow.split(",")}


def test_every_post_url_refuses_a_post_without_a_csrf_token(world):
    urls = sweep_urls(world)
    clients = {
        role: client_for(world, role, enforce_csrf_checks=True)
        for role in (STUDENT, TEACHER, ADMIN)
    }
    uncovered, accepted, swept = [], [], []
    for sweep_url in urls:
        role = poster_for(sweep_url.key)
        if role is None:
            # Unknown here: it must not take POST, whoever asks.
            if accepts_post(clients[ADMIN], sweep_url.url):
                uncovered.append(sweep_url.key)
            continue
        client = clients[role]
        if not accepts_post(client, sweep_url.url):
            continue
        response = client.post(sweep_url.url, {"name": "x", "code": "x", "scope": "global"})
        swept.append(sweep_url.key)
        if response.status_code != 403 or b"CSRF verification failed" not in response.content:
            accepted.append(f"{sweep_url.key} as {role}: {response.status_code}")
    assert not uncovered, f"POST URLs with no entry in POST_AS: {uncovered}"
    assert not accepted, "POSTs without a CSRF token that were not refused:\n" + "\n".join(accepted)
    # The sweep reached the project's own forms and actions, not only the admin.
    for key in ("classes:create", "classes:join", "reviews:rate", "retraining:rollback"):
        assert key in swept
    stale = sorted(set(POST_AS) - {u.key for u in urls})
    assert not stale, f"POST_AS names patterns that no longer exist: {stale}"


def test_the_sweep_sees_a_post_that_skips_the_csrf_check(world, client):
    """The check above can fail: a token-less POST from a client that skips the check (as a
    csrf_exempt view would) is not refused."""
    client.force_login(world["users"][TEACHER])
    url = next(u.url for u in sweep_urls(world) if u.key == "classes:regenerate_code")
    response = client.post(url)
    assert response.status_code == 302
