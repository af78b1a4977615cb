"""The class dashboard in headless Chromium: a teacher opens it, the charts are drawn from the
JSON endpoints, the per-student table shows mastery, and the stuck student stands out."""

import datetime as dt
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.live_server import LiveASGIServer
from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues.models import AnswerAttempt, Message, TutoringSession
from tutor.problems.models import Problem

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "correct horse"

# Non-blank: some pixel of the canvas is not fully transparent.
CANVAS_DRAWN = """(id) => {
  const canvas = document.getElementById(id);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) drawn += 1;
  return drawn;
}"""


@pytest.fixture
def dashboard_server(transactional_db):
    """The ASGI app without a model server: the dashboard never talks to the tutor."""
    from django.core.cache import cache

    from tutor.asgi import application

    cache.clear()
    server = LiveASGIServer(application)
    server.start()
    yield server
    server.stop()
    cache.clear()


def seed_class(make_user):
    teacher = make_user("ms-rivera", role="teacher", password=PASSWORD)
    classroom = Classroom.objects.create(name="Algebra 1", teacher=teacher)
    assignment = Assignment.objects.create(
        classroom=classroom, title="Week 1", due_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    )
    problems = [
        Problem.objects.create(
            title=title, text=title, final_answer="1", solution="1", skills=skills
        )
        for title, skills in [
            ("Solve for x", ["linear equations"]),
            ("Half of a half", ["fractions"]),
            ("Mixing paint", ["ratios", "fractions"]),
        ]
    ]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=4)
    plans = {
        # name: per day, per problem: outcomes
        "ada": [[True], [True], [False, True], [True]],
        "ben": [[False, True], [False, False, True], [True], [True]],
        "cleo": [[False, False], [False, True], [False], [False, False, False]],
    }
    for name, days in plans.items():
        student = make_user(name, password=PASSWORD)
        Enrollment.objects.create(classroom=classroom, student=student)
        for day, outcomes in enumerate(days):
            problem = problems[day % len(problems)]
            solved = outcomes[-1]
            session = TutoringSession.objects.create(
                student=student,
                problem=problem,
                classroom=classroom,
                assignment=assignment,
                status="closed" if solved else "open",
                outcome="solved" if solved else "incorrect",
            )
            when = start + dt.timedelta(days=day)
            for turn in range(6):
                message = Message.objects.create(
                    session=session, role="student" if turn % 2 == 0 else "tutor", text="..."
                )
                Message.objects.filter(pk=message.pk).update(
                    created_at=when + dt.timedelta(minutes=2 * turn)
                )
            for k, correct in enumerate(outcomes):
                attempt = AnswerAttempt.objects.create(session=session, answer="1", correct=correct)
                AnswerAttempt.objects.filter(pk=attempt.pk).update(
                    created_at=when + dt.timedelta(minutes=11 + k)
                )
    return teacher, classroom


def test_teacher_sees_charts_table_and_the_stuck_student(page, dashboard_server, make_user):
    teacher, classroom = seed_class(make_user)
    page.goto(f"{dashboard_server.url}/accounts/login/")
    page.fill("#id_username", teacher.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{dashboard_server.url}/")
    page.goto(f"{dashboard_server.url}/dashboards/classes/{classroom.pk}/")

    expect(page.locator("#dashboard")).to_have_attribute("data-state", "ready")
    expect(page.locator("h1")).to_have_text("Algebra 1")

    # Charts: Chart.js instances with data, and pixels on both canvases.
    charts = page.evaluate(
        """() => {
          const c = window.tutorDashboard.charts;
          return {
            mastery: c.mastery.data.datasets.map((d) => d.label),
            masteryPoints: c.mastery.data.labels.length,
            solve: c.solve.data.labels,
          };
        }"""
    )
    assert charts["mastery"] == ["fractions", "linear equations", "ratios"]
    assert charts["masteryPoints"] == 4
    assert charts["solve"] == ["fractions", "linear equations", "ratios"]
    assert page.evaluate(CANVAS_DRAWN, "mastery-chart") > 500
    assert page.evaluate(CANVAS_DRAWN, "solve-chart") > 500

    # Needs attention: Cleo, three wrong answers in an open session.
    attention = page.locator("#needs-attention .attention-item")
    cleo = attention.filter(has_text="Cleo")
    expect(cleo).to_have_count(1)
    expect(cleo.locator('[data-kind="stuck"]')).to_contain_text("3 wrong answers")
    expect(cleo.locator('[data-kind="stuck"] a.review-link')).to_have_attribute(
        "href", re.compile(r"^/reviews/sessions/\d+/$")
    )
    expect(attention.filter(has_text="Ada")).to_have_count(0)

    # Table: one row per student, mastery heat cells, the stuck row marked.
    rows = page.locator("#student-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#student-table tbody tr.needs-attention")).to_contain_text("Cleo")
    assert page.locator("#student-table td.heat[data-mastery]").count() >= 6
    ada = float(
        page.locator("#student-table tbody tr", has_text="Ada")
        .locator("td.heat[data-mastery]")
        .first.get_attribute("data-mastery")
    )
    cleo_mastery = float(
        page.locator("#student-table tbody tr", has_text="Cleo")
        .locator("td.heat[data-mastery]")
        .first.get_attribute("data-mastery")
    )
    assert ada > cleo_mastery

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
    assert page.js_errors == []


def test_another_teacher_gets_not_found(page, dashboard_server, make_user):
    _, classroom = seed_class(make_user)
    other = make_user("mr-other", role="teacher", password=PASSWORD)
    page.goto(f"{dashboard_server.url}/accounts/login/")
    page.fill("#id_username", other.username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-button")
    page.wait_for_url(f"{dashboard_server.url}/")
    response = page.goto(f"{dashboard_server.url}/dashboards/classes/{classroom.pk}/")
    assert response.status == 404
    assert (
        page.request.get(
            f"{dashboard_server.url}/dashboards/classes/{classroom.pk}/summary.json"
        ).status
        == 404
    )
