"""The class dashboard: exact numbers on a small class, role boundaries, and a query count that
does not grow with the class."""

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pedagogy.knowledge_tracing import fit_bkt, mastery_trajectory
from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues.models import AnswerAttempt, Message, TutoringSession
from tutor.problems.models import Problem

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def make_problem(title, skills):
    return Problem.objects.create(
        title=title, text=title, final_answer="1", solution="1", skills=skills
    )


def make_session(student, problem, classroom, assignment=None, *, messages=(), attempts=(), **kw):
    """messages: [(role, seconds after T0)]; attempts: [(correct, seconds after T0)]."""
    session = TutoringSession.objects.create(
        student=student, problem=problem, classroom=classroom, assignment=assignment, **kw
    )
    for role, when in messages:
        message = Message.objects.create(session=session, role=role, text=role)
        Message.objects.filter(pk=message.pk).update(created_at=at(when))
    for correct, when in attempts:
        attempt = AnswerAttempt.objects.create(session=session, answer="x", correct=correct)
        AnswerAttempt.objects.filter(pk=attempt.pk).update(created_at=at(when))
    return session


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(make_user, teacher):
    classroom = Classroom.objects.create(name="Period 3", teacher=teacher)
    fractions = make_problem("Halves", ["fractions"])
    mixed = make_problem("Shares", ["fractions", "ratios"])
    linear = make_problem("Solve for x", ["linear equations"])
    past = Assignment.objects.create(
        classroom=classroom,
        title="Fractions homework",
        due_at=timezone.now() - dt.timedelta(days=1),
    )
    future = Assignment.objects.create(
        classroom=classroom, title="Next week", due_at=timezone.now() + dt.timedelta(days=7)
    )
    alice, bob, carol = (make_user(n) for n in ("alice", "bob", "carol"))
    for student in (alice, bob, carol):
        Enrollment.objects.create(classroom=classroom, student=student)

    # Alice: two solved sessions. Gaps 60 + 60 + 1880 (capped to 600) = 720 s, then 30 s.
    make_session(
        alice,
        fractions,
        classroom,
        past,
        messages=[("student", 0), ("tutor", 60), ("student", 120), ("tutor", 2000)],
        attempts=[(False, 100), (True, 2100)],
        status="closed",
        outcome="solved",
    )
    make_session(
        alice,
        mixed,
        classroom,
        future,
        messages=[("student", 86400), ("tutor", 86430)],
        attempts=[(True, 86440)],
        status="closed",
        outcome="solved",
    )
    # Alice's free practice and an unenrolled student's session do not count.
    make_session(
        alice, linear, None, messages=[("student", 0), ("tutor", 5)], attempts=[(False, 6)] * 4
    )
    outsider = make_user("outsider")
    make_session(
        outsider, linear, classroom, future, messages=[("student", 0)], attempts=[(False, 1)] * 4
    )
    # Bob: stuck on an open session (three wrong answers), nothing on the overdue assignment.
    make_session(
        bob,
        linear,
        classroom,
        future,
        messages=[("student", 0), ("tutor", 10), ("student", 20), ("tutor", 30), ("student", 40)],
        attempts=[(False, 15), (False, 25), (False, 45)],
    )
    # Carol: nothing at all.
    return {"classroom": classroom, "alice": alice, "bob": bob, "carol": carol}


def get_json(user, name, classroom):
    client = Client()
    client.force_login(user)
    return client.get(f"/dashboards/classes/{classroom.pk}/{name}")


def test_summary_numbers_are_exact(teacher, world):
    response = get_json(teacher, "summary.json", world["classroom"])
    assert response.status_code == 200
    data = response.json()
    students = {s["name"]: s for s in data["students"]}
    assert sorted(students) == ["Alice", "Bob", "Carol"]

    alice = students["Alice"]
    assert (alice["attempts"], alice["correct"], alice["sessions"], alice["solved"]) == (3, 2, 2, 2)
    assert alice["solve_rate"] == 1.0
    assert alice["time_on_task_s"] == pytest.approx(750)
    assert alice["hints"] == 3
    assert alice["last_activity"] == at(86430).isoformat()
    fractions = alice["skills"]["fractions"]
    assert (fractions["attempts"], fractions["sessions"], fractions["solved"]) == (3, 2, 2)
    assert (fractions["time_on_task_s"], fractions["hints"]) == (750, 3)
    ratios = alice["skills"]["ratios"]
    assert (ratios["attempts"], ratios["sessions"], ratios["time_on_task_s"], ratios["hints"]) == (
        1,
        1,
        30,
        1,
    )
    assert "linear equations" not in alice["skills"]

    bob = students["Bob"]
    assert (bob["attempts"], bob["correct"], bob["sessions"], bob["solved"]) == (3, 0, 1, 0)
    assert bob["solve_rate"] == 0.0
    assert (bob["time_on_task_s"], bob["hints"]) == (40, 2)

    carol = students["Carol"]
    assert (carol["attempts"], carol["sessions"], carol["hints"]) == (0, 0, 0)
    assert carol["solve_rate"] is None and carol["skills"] == {}

    # Mastery: BKT fitted per skill on the class's enrolled students' attempts, in time order.
    linear_fit = fit_bkt([[False, False, False]]).params
    bob_linear = mastery_trajectory(linear_fit, [False, False, False])[-1]
    assert bob["skills"]["linear equations"]["mastery"] == pytest.approx(bob_linear, abs=1e-4)
    fractions_fit = fit_bkt([[False, True, True]]).params
    alice_fractions = mastery_trajectory(fractions_fit, [False, True, True])[-1]
    assert fractions["mastery"] == pytest.approx(alice_fractions, abs=1e-4)
    assert bob_linear < 0.4 < alice_fractions

    skills = {s["skill"]: s for s in data["skills"]}
    assert list(skills) == ["fractions", "linear equations", "ratios"]
    assert (skills["fractions"]["sessions"], skills["fractions"]["solved"]) == (2, 2)
    assert (skills["linear equations"]["sessions"], skills["linear equations"]["solve_rate"]) == (
        1,
        0.0,
    )
    assert skills["ratios"]["attempts"] == 1

    attention = {entry["name"]: entry["reasons"] for entry in data["needs_attention"]}
    assert sorted(attention) == ["Bob", "Carol"]
    assert [r["kind"] for r in attention["Bob"]] == ["stuck", "low_mastery", "overdue"]
    assert "3 wrong answers" in attention["Bob"][0]["text"]
    assert "Solve for x" in attention["Bob"][0]["text"]
    bob_session = TutoringSession.objects.get(student=world["bob"])
    assert attention["Bob"][0]["review_url"] == f"/reviews/sessions/{bob_session.pk}/"
    assert "Fractions homework" in attention["Bob"][2]["text"]
    assert [r["kind"] for r in attention["Carol"]] == ["overdue"]
    assert students["Bob"]["needs_attention"] and not students["Alice"]["needs_attention"]


def test_new_messages_and_attempts_show_up_on_the_next_request(teacher, world):
    classroom = world["classroom"]
    before = get_json(teacher, "summary.json", classroom).json()
    bob = next(s for s in before["students"] if s["name"] == "Bob")
    assert (bob["hints"], bob["time_on_task_s"], bob["attempts"]) == (2, 40, 3)
    session = TutoringSession.objects.get(student=world["bob"])
    reply = Message.objects.create(session=session, role="tutor", text="Try again")
    Message.objects.filter(pk=reply.pk).update(created_at=at(100))
    AnswerAttempt.objects.create(session=session, answer="6", correct=True)
    after = get_json(teacher, "summary.json", classroom).json()
    bob = next(s for s in after["students"] if s["name"] == "Bob")
    assert (bob["hints"], bob["time_on_task_s"], bob["attempts"]) == (3, 100, 4)


def test_mastery_over_time(teacher, world):
    data = get_json(teacher, "mastery.json", world["classroom"]).json()
    assert data["skills"] == ["fractions", "linear equations", "ratios"]
    fractions = data["series"]["fractions"]
    assert [p["date"] for p in fractions] == ["2026-03-02", "2026-03-03"]
    assert [p["students"] for p in fractions] == [1, 1]
    params = fit_bkt([[False, True, True]]).params
    trajectory = mastery_trajectory(params, [False, True, True])
    assert fractions[0]["mastery"] == pytest.approx(trajectory[1], abs=1e-4)
    assert fractions[1]["mastery"] == pytest.approx(trajectory[2], abs=1e-4)
    assert set(data["params"]) == {"fractions", "linear equations", "ratios"}


def test_page_renders_for_the_teacher(teacher, world):
    client = Client()
    client.force_login(teacher)
    response = client.get(f"/dashboards/classes/{world['classroom'].pk}/")
    assert response.status_code == 200
    assert b"Period 3" in response.content
    assert b"tutor/dashboard.js" in response.content
    assert b"summary.json" in response.content


@pytest.mark.parametrize("name", ["", "summary.json", "mastery.json"])
def test_role_boundaries(make_user, world, name):
    classroom = world["classroom"]
    other_teacher = make_user("other", role="teacher")
    admin = make_user("boss", role="admin")
    assert get_json(other_teacher, name, classroom).status_code == 404
    assert get_json(world["bob"], name, classroom).status_code == 403
    assert get_json(make_user("stranger"), name, classroom).status_code == 403
    assert get_json(admin, name, classroom).status_code == 200
    anonymous = Client().get(f"/dashboards/classes/{classroom.pk}/{name}")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    missing = Classroom.objects.order_by("-pk").first().pk + 1
    assert get_json(admin, name, Classroom(pk=missing)).status_code == 404


def build_class(make_user, teacher, n_students, tag):
    classroom = Classroom.objects.create(name=f"Class {tag}", teacher=teacher)
    problems = [make_problem(f"P{i}", [f"skill {i % 3}"]) for i in range(4)]
    assignment = Assignment.objects.create(
        classroom=classroom, title="Overdue", due_at=timezone.now() - dt.timedelta(days=1)
    )
    for i in range(n_students):
        student = make_user(f"{tag}-s{i}")
        Enrollment.objects.create(classroom=classroom, student=student)
        for j, problem in enumerate(problems[: 1 + i % 4]):
            make_session(
                student,
                problem,
                classroom,
                assignment,
                messages=[("student", j * 100), ("tutor", j * 100 + 20)],
                attempts=[(bool((i + j) % 2), j * 100 + 30)],
            )
    return classroom


def count_queries(user, name, classroom):
    client = Client()
    client.force_login(user)
    client.get(f"/dashboards/classes/{classroom.pk}/{name}")  # warm the session and user
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/dashboards/classes/{classroom.pk}/{name}")
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("name", ["summary.json", "mastery.json", ""])
def test_query_count_does_not_grow_with_students(make_user, teacher, name):
    small = build_class(make_user, teacher, 3, "small")
    large = build_class(make_user, teacher, 12, "large")
    assert len(get_json(teacher, "summary.json", large).json()["students"]) == 12
    small_count = count_queries(teacher, name, small)
    assert small_count == count_queries(teacher, name, large)
    assert small_count <= 10
