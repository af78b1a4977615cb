"""Sign-up with a class join code: the code is the gate, and tries are limited per address."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tutor.accounts.models import Role, User
from tutor.classes.models import Classroom, Enrollment

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PASSWORD = "a long walk in the park"


@pytest.fixture(autouse=True)
def clear_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def classroom(teacher):
    return Classroom.objects.create(name="Algebra 1", teacher=teacher)


def signup_data(code: str, username: str = "newbie", **extra) -> dict:
    return {
        "code": code,
        "username": username,
        "first_name": "Nia",
        "last_name": "Newton",
        "password1": PASSWORD,
        "password2": PASSWORD,
        **extra,
    }


def test_a_code_makes_a_student_in_that_class_and_logs_them_in(classroom):
    client = Client()
    code = classroom.join_code
    spaced = f" {code[:4].lower()}-{code[4:]} "
    page = client.post(reverse("signup"), signup_data(spaced, role="teacher", is_staff="on"))
    assert page.status_code == 302 and page["Location"] == reverse("home")
    user = User.objects.get(username="newbie")
    assert user.role == Role.STUDENT and not user.is_staff and not user.is_superuser
    assert not user.must_change_password
    assert Enrollment.objects.filter(student=user, classroom=classroom).exists()
    assert int(client.session["_auth_user_id"]) == user.pk
    home = client.get(reverse("home"))
    assert "Algebra 1" in home.text


@pytest.mark.parametrize("code", ["", "NOPE2345", "x" * 40])
def test_no_valid_code_no_account(classroom, code):
    page = Client().post(reverse("signup"), signup_data(code))
    assert page.status_code == 200
    assert not User.objects.filter(username="newbie").exists()
    assert 'data-field="code"' in page.text


def test_an_archived_class_code_is_refused(classroom):
    classroom.is_archived = True
    classroom.save()
    page = Client().post(reverse("signup"), signup_data(classroom.join_code))
    assert "No class has that code" in page.text
    assert not User.objects.filter(username="newbie").exists()


def test_clear_errors_for_taken_usernames_and_weak_passwords(classroom, make_user):
    make_user("Taken")
    page = Client().post(
        reverse("signup"),
        signup_data(classroom.join_code, username="taken", password1="123", password2="123"),
    )
    assert page.status_code == 200
    assert "A user with that username already exists." in page.text
    assert "This password is too short" in page.text
    assert User.objects.count() == 2  # the teacher and "Taken"


def test_wrong_codes_lock_the_address_out(classroom, settings):
    settings.TUTOR_SIGNUP_CODE_FAILURES_PER_HOUR = 3
    client = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(4):
        client.post(reverse("signup"), signup_data(f"WRONG{n:03d}"))
    page = client.post(reverse("signup"), signup_data(classroom.join_code))
    assert page.status_code == 429
    assert "Too many wrong class codes" in page.text
    assert not User.objects.filter(username="newbie").exists()
    # Another address is not held up.
    other = Client(REMOTE_ADDR="198.51.100.7")
    assert other.post(reverse("signup"), signup_data(classroom.join_code)).status_code == 302


def test_sign_ups_per_address_are_limited(classroom, settings):
    settings.TUTOR_RATE_SIGNUPS_PER_HOUR = 2
    client = Client(REMOTE_ADDR="203.0.113.10")
    for n in range(2):
        assert (
            client.post(reverse("signup"), signup_data(classroom.join_code, f"kid{n}")).status_code
            == 302
        )
        client.logout()
    page = client.post(reverse("signup"), signup_data(classroom.join_code, "kid3"))
    assert page.status_code == 429 and "Too many sign-ups" in page.text
    assert not User.objects.filter(username="kid3").exists()


def test_logged_in_users_are_sent_home(make_user):
    client = Client()
    client.force_login(make_user("stu"))
    assert client.get(reverse("signup"))["Location"] == reverse("home")


def test_the_login_page_links_to_sign_up_and_reset_and_has_no_sso_when_off(settings):
    assert not settings.TUTOR_SSO
    page = Client().get(reverse("login"))
    assert reverse("signup") in page.text and reverse("password_reset") in page.text
    assert "Sign in with" not in page.text
