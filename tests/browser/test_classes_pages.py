"""Classes in headless Chromium: a teacher sets up a class and an assignment, a student joins
with the code and opens the assignment in the tutor chat."""

import pytest
from playwright.sync_api import expect

from tutor.classes.models import Assignment, Classroom
from tutor.dialogues.models import TutoringSession
from tutor.problems.models import Problem

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse"


def log_in(page, asgi_server, username):
    page.goto(f"{asgi_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{asgi_server.url}/")


def test_teacher_sets_up_a_class_and_student_opens_the_assignment(
    browser, asgi_server, make_user, problem
):
    make_user("browser-teacher", role="teacher", password=PASSWORD)
    student = make_user("browser-pupil", password=PASSWORD)
    Problem.objects.create(
        title="Add fractions",
        text="What is 1/2 + 1/4?",
        final_answer="3/4",
        solution="Common denominator 4.",
        skills=["fractions"],
        difficulty=1,
    )

    teacher_page = browser.new_context().new_page()
    log_in(teacher_page, asgi_server, "browser-teacher")
    teacher_page.goto(f"{asgi_server.url}/classes/")
    teacher_page.click("#new-class")
    teacher_page.fill("#id_name", "Algebra 1")
    teacher_page.fill("#id_pedagogy_instructions", "Use the bar model.")
    teacher_page.click("#class-form button[type=submit]")
    code = teacher_page.locator("#join-code").inner_text().strip()
    classroom = Classroom.objects.get(name="Algebra 1")
    assert code == classroom.join_code

    # The builder's skill filter narrows the bank to the linear-equations problem.
    teacher_page.click("#new-assignment")
    teacher_page.select_option("#filter-skill", "linear equations")
    teacher_page.click("#problem-filters button[type=submit]")
    choices = teacher_page.locator("#problem-choices input[type=checkbox]")
    expect(choices).to_have_count(1)
    choices.first.check()
    teacher_page.fill("#id_title", "Week 1")
    teacher_page.fill("#id_due_at", "2030-01-15T09:30")
    teacher_page.click("#assignment-form button[type=submit]")
    expect(teacher_page.locator("#assignments")).to_contain_text("Week 1")
    assignment = Assignment.objects.get(title="Week 1")
    assert list(assignment.problems.all()) == [problem]

    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(page, asgi_server, "browser-pupil")
    page.fill("#join-code-input", f" {code.lower()} ")
    page.click("#join-form button[type=submit]")
    expect(page.locator(".flash-list")).to_contain_text("You joined")
    expect(page.locator("#my-classes")).to_contain_text("Algebra 1")
    item = page.locator(
        f'#your-assignments [data-assignment-id="{assignment.pk}"] '
        f'.problem-item[data-problem-id="{problem.pk}"]'
    )
    expect(item).to_have_attribute("data-status", "not_started")
    item.locator("button").click()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    session = TutoringSession.objects.get(student=student)
    assert session.assignment == assignment and session.classroom == classroom

    page.goto(f"{asgi_server.url}/")
    expect(item).to_have_attribute("data-status", "in_progress")

    # The roster shows the student who joined.
    teacher_page.goto(f"{asgi_server.url}/classes/{classroom.pk}/")
    expect(teacher_page.locator("#roster")).to_contain_text("browser-pupil")
    assert errors == []
