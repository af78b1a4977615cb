"""Every role on the account pages and the roster import, GET and POST, with the sweep's world
(tests/integration/test_role_sweep.py), so these pages are checked even before the sweep's
table lists them."""

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.integration.test_role_sweep import (
    FORBIDDEN,
    LOGIN,
    NOT_FOUND,
    OK,
    REDIRECT,
    ROLES,
    build_world,
    client_for,
    everyone,
    outcome,
    row,
)
from tutor.accounts.models import User

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def world(make_user, problem, settings):
    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"
    cache.clear()
    yield build_world(make_user, problem)
    cache.clear()


def pages(world) -> dict[str, tuple[str, dict]]:
    classroom = world["classroom"]
    return {
        "signup": (reverse("signup"), row(OK, REDIRECT, REDIRECT, REDIRECT, REDIRECT)),
        "password_change": (reverse("password_change"), row(LOGIN, OK, OK, OK, OK)),
        "password_change_done": (reverse("password_change_done"), row(LOGIN, OK, OK, OK, OK)),
        "password_reset": (reverse("password_reset"), everyone(OK)),
        "password_reset_done": (reverse("password_reset_done"), everyone(OK)),
        "password_reset_confirm": (
            reverse("password_reset_confirm", kwargs={"uidb64": "MQ", "token": "x-y"}),
            everyone(OK),
        ),
        "password_reset_complete": (reverse("password_reset_complete"), everyone(OK)),
        "classes:roster_import": (
            reverse("classes:roster_import", args=[classroom.pk]),
            row(LOGIN, FORBIDDEN, NOT_FOUND, OK, OK),
        ),
    }


def test_every_role_gets_the_expected_page(world):
    wrong = []
    for role in ROLES:
        client = client_for(world, role)
        for key, (url, expected) in pages(world).items():
            got = outcome(client.get(url))
            if got != expected[role]:
                wrong.append(f"{role} GET {url} ({key}): {got}, expected {expected[role]}")
    assert not wrong, "\n".join(wrong)


def test_only_the_class_teacher_and_admins_can_post_a_roster(world):
    url = reverse("classes:roster_import", args=[world["classroom"].pk])
    expected = row(LOGIN, FORBIDDEN, NOT_FOUND, OK, OK)
    for n, role in enumerate(ROLES):
        upload = SimpleUploadedFile("r.csv", f"posted{n},P,{n}\n".encode(), "text/csv")
        got = outcome(client_for(world, role).post(url, {"file": upload}))
        assert got == expected[role], role
        assert User.objects.filter(username=f"posted{n}").exists() == (got == OK), role


def test_no_page_shows_a_teacher_link_to_students(world):
    student = client_for(world, "student")
    for key in ("password_change", "password_change_done"):
        page = student.get(reverse(key))
        assert "/classes/" not in page.text and "/retraining/" not in page.text
