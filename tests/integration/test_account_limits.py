"""Per-user limits on pages: login attempts (django-axes) and join-code tries."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tutor.classes.models import Classroom, Enrollment

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def clear_limits():
    cache.clear()
    yield
    cache.clear()


def test_logins_lock_out_after_the_failure_limit(make_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user("ana", password="a-long-right-password")
    client = Client()
    for _ in range(3):
        page = client.post(reverse("login"), {"username": "ana", "password": "wrong"})
    assert page.status_code == 429
    assert "Too many login attempts" in page.text
    # Locked: even the right password is refused until the cool-off ends.
    page = client.post(reverse("login"), {"username": "ana", "password": "a-long-right-password"})
    assert page.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_lockout_is_per_username_and_address(make_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    make_user("ana", password="a-long-right-password")
    make_user("ben", password="another-right-password")
    client = Client()
    for _ in range(2):
        client.post(reverse("login"), {"username": "ana", "password": "wrong"})
    page = client.post(reverse("login"), {"username": "ben", "password": "another-right-password"})
    assert page.status_code == 302 and client.session["_auth_user_id"]


def test_join_code_tries_are_limited(make_user, teacher, settings):
    settings.TUTOR_RATE_JOIN_CODES_PER_HOUR = 3
    classroom = Classroom.objects.create(name="Algebra 1", teacher=teacher)
    student = make_user("stu")
    client = Client()
    client.force_login(student)
    for guess in ["AAAA-1111", "BBBB-2222", "CCCC-3333"]:
        client.post(reverse("classes:join"), {"code": guess})
    page = client.post(reverse("classes:join"), {"code": classroom.join_code}, follow=True)
    assert "Too many join codes tried" in page.text
    assert not Enrollment.objects.filter(student=student).exists()
    # Another student is not held up by this one's tries.
    other = make_user("other")
    client.force_login(other)
    client.post(reverse("classes:join"), {"code": classroom.join_code})
    assert Enrollment.objects.filter(student=other, classroom=classroom).exists()


def test_password_validators_refuse_common_and_numeric_passwords(make_user):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    user = make_user("ana")
    for weak in ["password123", "12345678901", "ana-ana"]:
        with pytest.raises(ValidationError):
            validate_password(weak, user)
    validate_password("correct horse battery staple", user)
