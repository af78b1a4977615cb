"""Roster import: who may import where, what is created, and what is reported."""

import logging
import re

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tutor.accounts.models import Role, User
from tutor.classes.models import Classroom, Enrollment

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ROSTER = (
    "username,first_name,last_name\n"
    "ada,Ada,Lovelace\n"
    "grace,Grace,Hopper\n"
    "ada,Ada,Again\n"
    "bad name,Bad,Name\n"
    "ms-rivera,Not,Astudent\n"
    "existing,Eve,Existing\n"
)


@pytest.fixture(autouse=True)
def clear_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def classroom(teacher):
    return Classroom.objects.create(name="Algebra 1", teacher=teacher)


def upload(client, classroom, text: str | bytes = ROSTER, name="roster.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        reverse("classes:roster_import", args=[classroom.pk]),
        {"file": SimpleUploadedFile(name, data, content_type="text/csv")},
    )


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_import_creates_students_with_temporary_passwords_shown_once(
    classroom, teacher, make_user, caplog
):
    existing = make_user("existing")
    caplog.set_level(logging.DEBUG)
    page = upload(as_user(teacher), classroom)
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    created = {u.username: u for u in User.objects.filter(username__in=["ada", "grace"])}
    assert set(created) == {"ada", "grace"}
    for user in created.values():
        assert user.role == Role.STUDENT and user.must_change_password
        assert Enrollment.objects.filter(student=user, classroom=classroom).exists()
    # The passwords on the page log their owners in, and are stored only as hashes.
    passwords = re.findall(r'<code class="temporary-password">([^<]+)</code>', page.text)
    assert len(passwords) == 2
    ada_password = passwords[0]
    login = Client().post(reverse("login"), {"username": "ada", "password": ada_password})
    assert login.status_code == 302
    assert ada_password not in created["ada"].password
    assert all(p not in caplog.text for p in passwords)
    # The existing student is enrolled; bad rows are reported with their line and reason.
    assert Enrollment.objects.filter(student=existing, classroom=classroom).exists()
    text = page.text
    assert "the same username as line 2" in text
    assert "only letters, digits" in text
    assert "not a student" in text
    assert not User.objects.filter(username="bad name").exists()
    assert User.objects.get(username="ms-rivera").role == Role.TEACHER
    # Nothing about the passwords is kept for later: a second import shows none.
    again = upload(as_user(teacher), classroom)
    assert "temporary-password" not in again.text and "already in the class" in again.text


def test_a_student_cannot_import(classroom, make_user):
    page = upload(as_user(make_user("stu")), classroom)
    assert page.status_code == 403
    assert not User.objects.filter(username="ada").exists()


def test_a_teacher_imports_only_into_their_own_classes(classroom, other_teacher, make_user):
    page = upload(as_user(other_teacher), classroom)
    assert page.status_code == 404
    assert not User.objects.filter(username="ada").exists()
    admin = make_user("root", role="admin")
    assert upload(as_user(admin), classroom).status_code == 200
    assert User.objects.filter(username="ada").exists()


def test_anonymous_users_go_to_the_login_page(classroom):
    page = upload(Client(), classroom)
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x" * (64 * 1024 + 1), "larger than 64 KB"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"", "The submitted file is empty."),
        (b"\n , \n", "no students"),
    ],
)
def test_bad_files_get_a_clear_error_and_change_nothing(classroom, teacher, data, message):
    before = User.objects.count()
    page = upload(as_user(teacher), classroom, data)
    assert page.status_code == 200
    assert message in page.text
    assert User.objects.count() == before


def test_too_many_rows_are_refused_whole(classroom, teacher, settings):
    settings.TUTOR_ROSTER_MAX_ROWS = 3
    rows = "".join(f"kid{n},Kid,{n}\n" for n in range(4))
    page = upload(as_user(teacher), classroom, rows)
    assert "more than 3 students" in page.text
    assert not User.objects.filter(username__startswith="kid").exists()


def test_a_missing_file_is_a_clear_error(classroom, teacher):
    page = as_user(teacher).post(reverse("classes:roster_import", args=[classroom.pk]), {})
    assert page.status_code == 200 and "This field is required" in page.text


def test_the_class_page_links_to_the_import(classroom, teacher):
    page = as_user(teacher).get(reverse("classes:detail", args=[classroom.pk]))
    assert reverse("classes:roster_import", args=[classroom.pk]) in page.text
