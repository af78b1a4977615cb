"""Accounts in headless Chromium: a new student signs up with their class's code and chats with
the tutor (the real vLLM server); a teacher imports a roster and a student from it must choose
their own password before anything else."""

import pytest
from playwright.sync_api import expect

from tutor.accounts.models import User
from tutor.classes.models import Classroom, Enrollment
from tutor.dialogues.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse"
NEW_PASSWORD = "my very own password"


def test_a_new_student_signs_up_with_the_class_code_and_chats(
    page, asgi_server, teacher, problem, settings
):
    settings.TUTOR_MAX_REPLY_TOKENS = 40
    server = asgi_server
    classroom = Classroom.objects.create(name="Algebra 1", teacher=teacher)
    page.goto(f"{server.url}/accounts/login/")
    page.click("#signup-link")
    # A wrong code: a clear error, and no account.
    page.fill("#id_code", "WRONG-CODE")
    page.fill("#id_username", "nia")
    page.fill("#id_first_name", "Nia")
    page.fill("#id_password1", PASSWORD + " staple")
    page.fill("#id_password2", PASSWORD + " staple")
    page.click("#signup-button")
    expect(page.locator('.form-error[data-field="code"]')).to_contain_text("No class has that code")
    assert not User.objects.filter(username="nia").exists()
    # The right code, typed as people type it.
    page.fill("#id_code", f" {classroom.join_code.lower()} ")
    page.fill("#id_password1", PASSWORD + " staple")
    page.fill("#id_password2", PASSWORD + " staple")
    page.click("#signup-button")
    page.wait_for_url(f"{server.url}/")
    expect(page.locator(".flash-list")).to_contain_text("Algebra 1")
    expect(page.locator("#my-classes")).to_contain_text("Algebra 1")
    student = User.objects.get(username="nia")
    assert student.role == "student"
    assert Enrollment.objects.filter(student=student, classroom=classroom).exists()

    # Straight to work: a problem, a question, the tutor's streamed reply, both stored.
    page.locator(f'.problem-item[data-problem-id="{problem.pk}"] button').click()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    page.fill("#message-input", "Where do I start?")
    page.keyboard.press("Enter")
    expect(page.locator(".message--tutor[data-message-id]")).to_have_count(1, timeout=120_000)
    stored = list(Message.objects.filter(session__student=student).order_by("id"))
    assert [(m.role, bool(m.text)) for m in stored] == [("student", True), ("tutor", True)]
    assert stored[0].text == "Where do I start?"
    assert page.js_errors == []


def test_roster_import_then_a_forced_password_change(
    browser, asgi_server_without_model, make_user, tmp_path
):
    server = asgi_server_without_model
    teacher = make_user("browser-teacher", role="teacher", password=PASSWORD)
    classroom = Classroom.objects.create(name="Geometry", teacher=teacher)
    roster = tmp_path / "roster.csv"
    roster.write_text("username,first_name,last_name\nlin,Lin,Ma\nlin,Lin,Again\n")

    teacher_page = browser.new_context().new_page()
    teacher_page.goto(f"{server.url}/accounts/login/")
    teacher_page.fill("#id_username", "browser-teacher")
    teacher_page.fill("#id_password", PASSWORD)
    teacher_page.click("#login-button")
    teacher_page.wait_for_url(f"{server.url}/")
    teacher_page.goto(f"{server.url}/classes/{classroom.pk}/")
    teacher_page.click("#roster-import-link")
    teacher_page.set_input_files("#id_file", str(roster))
    teacher_page.click("#roster-submit")
    expect(teacher_page.locator("#rejected-rows")).to_contain_text("the same username as line 2")
    temporary = teacher_page.locator('#created-accounts [data-username="lin"] code').inner_text()
    assert temporary

    page = browser.new_context().new_page()
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", "lin")
    page.fill("#id_password", temporary)
    page.click("#login-button")
    page.wait_for_url(f"{server.url}/accounts/password/change/")
    expect(page.locator("#forced-change")).to_be_visible()
    # Going elsewhere leads back here.
    page.goto(f"{server.url}/")
    page.wait_for_url(f"{server.url}/accounts/password/change/")
    page.fill("#id_old_password", temporary)
    page.fill("#id_new_password1", NEW_PASSWORD)
    page.fill("#id_new_password2", NEW_PASSWORD)
    page.click("#password-change-button")
    expect(page.locator("#password-changed")).to_be_visible()
    page.click("#continue")
    page.wait_for_url(f"{server.url}/")
    expect(page.locator("#my-classes")).to_contain_text("Geometry")
    assert not User.objects.get(username="lin").must_change_password
