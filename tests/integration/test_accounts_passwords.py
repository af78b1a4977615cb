"""Password change, the forced change of a teacher-issued password, and reset by email."""

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tutor.accounts.models import User

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

TEMPORARY = "abcd-efgh-jkmn"
NEW = "a brand new secret phrase"


@pytest.fixture(autouse=True)
def clear_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def forced(make_user):
    user = make_user("fresh", password=TEMPORARY)
    user.must_change_password = True
    user.save()
    return user


def logged_in(username: str, password: str) -> Client:
    client = Client()
    page = client.post(reverse("login"), {"username": username, "password": password})
    assert page.status_code == 302, page.text
    return client


def test_a_forced_change_cannot_be_skipped_by_visiting_other_urls(forced, teacher, problem):
    from tutor.classes.models import Classroom

    classroom = Classroom.objects.create(name="Algebra 1", teacher=teacher)
    client = logged_in("fresh", TEMPORARY)
    change = reverse("password_change")
    for url in [
        reverse("home"),
        reverse("classes:list"),
        reverse("classes:detail", args=[classroom.pk]),
        reverse("signup"),
        reverse("password_reset"),
        "/admin/",
        "/no-such-page/",
    ]:
        page = client.get(url)
        assert (page.status_code, page["Location"]) == (302, change), url
    for url in [reverse("classes:join"), reverse("dialogues:start", args=[problem.pk])]:
        page = client.post(url, {"code": classroom.join_code})
        assert (page.status_code, page["Location"]) == (302, change), url
    page = client.get(change)
    assert page.status_code == 200 and 'id="forced-change"' in page.text
    # Logging out is allowed.
    assert client.post(reverse("logout")).status_code == 302


def test_the_forced_change_needs_a_new_password_and_then_lets_the_user_in(forced):
    client = logged_in("fresh", TEMPORARY)
    same = client.post(
        reverse("password_change"),
        {"old_password": TEMPORARY, "new_password1": TEMPORARY, "new_password2": TEMPORARY},
    )
    assert same.status_code == 200 and "Choose a new password" in same.text
    wrong = client.post(
        reverse("password_change"),
        {"old_password": "not-it", "new_password1": NEW, "new_password2": NEW},
    )
    assert "Your old password was entered incorrectly" in wrong.text
    forced.refresh_from_db()
    assert forced.must_change_password
    done = client.post(
        reverse("password_change"),
        {"old_password": TEMPORARY, "new_password1": NEW, "new_password2": NEW},
    )
    assert done["Location"] == reverse("password_change_done")
    forced.refresh_from_db()
    assert not forced.must_change_password and forced.check_password(NEW)
    assert client.get(reverse("home")).status_code == 200  # still logged in, free to go


def test_password_change_needs_a_login(make_user):
    page = Client().get(reverse("password_change"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))


def test_old_password_tries_are_limited(make_user, settings):
    settings.AXES_FAILURE_LIMIT = 1
    user = make_user("ana", password="the-right-old-one")
    client = Client()
    client.force_login(user)
    for _ in range(2):
        client.post(
            reverse("password_change"),
            {"old_password": "guess", "new_password1": NEW, "new_password2": NEW},
        )
    page = client.post(
        reverse("password_change"),
        {"old_password": "the-right-old-one", "new_password1": NEW, "new_password2": NEW},
    )
    assert page.status_code == 429 and "Too many tries" in page.text
    user.refresh_from_db()
    assert user.check_password("the-right-old-one")


def test_reset_mails_a_working_link_and_ends_a_forced_change(forced):
    forced.email = "fresh@example.org"
    forced.save()
    page = Client().post(reverse("password_reset"), {"email": "Fresh@example.org"})
    assert page["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["fresh@example.org"]
    link = re.search(r"https?://[^/]+(/\S+)", mail.outbox[0].body)[1]
    client = Client()
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.text
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
    assert done["Location"] == reverse("password_reset_complete")
    forced.refresh_from_db()
    assert forced.check_password(NEW) and not forced.must_change_password
    # The link works once.
    assert "This link does not work" in Client().get(link, follow=True).text


def test_reset_does_not_reveal_whether_an_account_exists(make_user):
    user = make_user("ana")
    user.email = "ana@example.org"
    user.save()
    known = Client().post(reverse("password_reset"), {"email": "ana@example.org"}, follow=True)
    unknown = Client().post(reverse("password_reset"), {"email": "nobody@example.org"}, follow=True)
    assert known.status_code == unknown.status_code == 200
    assert known.redirect_chain == unknown.redirect_chain
    assert known.text == unknown.text
    assert len(mail.outbox) == 1


def test_reset_requests_are_rate_limited_and_still_reveal_nothing(make_user, settings):
    settings.TUTOR_RATE_PASSWORD_RESETS_PER_HOUR = 2
    user = make_user("ana")
    user.email = "ana@example.org"
    user.save()
    # Per recipient: past the limit the page is the same, and no more mail is sent.
    for n in range(3):
        page = Client(REMOTE_ADDR=f"198.51.100.{n}").post(
            reverse("password_reset"), {"email": "ana@example.org"}
        )
        assert page["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 2
    # Per address: refused with a clear message.
    client = Client(REMOTE_ADDR="203.0.113.5")
    for _ in range(2):
        client.post(reverse("password_reset"), {"email": "x@example.org"})
    page = client.post(reverse("password_reset"), {"email": "x@example.org"})
    assert page.status_code == 429 and "Too many reset requests" in page.text


def test_a_bad_reset_link_gets_a_clear_page():
    page = Client().get(
        reverse("password_reset_confirm", kwargs={"uidb64": "MQ", "token": "bad-token"})
    )
    assert page.status_code == 200 and "This link does not work" in page.text


def test_users_made_by_create_user_are_not_forced():
    assert not User(username="x").must_change_password
