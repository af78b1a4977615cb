"""The demo classroom (tutor/demo, ``seed_demo_classroom``, ``seed_demo``): what it creates, that a
second run changes nothing, the opt-outs, that its pages have content for the demo teacher and
the admin and none for another teacher, the query bound, and the base version's first
evaluation."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from training.data.mathdial import read_mathdial
from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.demo import evaluation
from tutor.demo.people import USERNAME_PREFIX
from tutor.demo.seed import DEMO_CLASS_NAME, seed_demo_classroom
from tutor.demo.source import mathdial_path
from tutor.dialogues.models import (
    AnswerAttempt,
    BlockedReply,
    GuardOutcome,
    Message,
    ReplyRating,
    TutoringSession,
)
from tutor.problems.models import Problem
from tutor.retraining.export import build_dataset, count_window_problems
from tutor.retraining.models import EvalRun
from tutor.retraining.services import base_version
from tutor.reviews.models import Flag, TurnRating

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db,
    pytest.mark.skipif(not mathdial_path().exists(), reason="shared MathDial data not found"),
]

TABLES = (
    Classroom,
    Enrollment,
    Assignment,
    TutoringSession,
    Message,
    AnswerAttempt,
    BlockedReply,
    Flag,
    TurnRating,
    ReplyRating,
    Problem,
)
PASSWORD = "demo-test-password"


def counts() -> dict[str, int]:
    User = get_user_model()
    return {
        "users": User.objects.count(),
        **{model.__name__: model.objects.count() for model in TABLES},
    }


@pytest.fixture
def demo(db):
    """The demo accounts (as seed_demo makes them, without the class), then the class."""
    call_command("seed_demo", "--no-classroom", "--password", PASSWORD, stdout=StringIO())
    result = seed_demo_classroom()
    assert result.created
    return result.classroom


def client_for(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def fingerprint(classroom: Classroom) -> list[tuple]:
    """What a user would see of the history, without ids or dates."""
    rows = []
    sessions = TutoringSession.objects.filter(classroom=classroom).select_related(
        "student", "problem", "assignment"
    )
    for session in sessions.order_by("created_at", "student__username"):
        rows.append(
            (
                session.student.username,
                session.problem.source_id,
                session.assignment.title,
                session.outcome,
                tuple(session.messages.order_by("created_at", "id").values_list("text", flat=True)),
                tuple(
                    session.attempts.order_by("created_at", "id").values_list("answer", "correct")
                ),
            )
        )
    return rows


# ---- what it creates --------------------------------------------------------------------------


def test_the_class_roster_and_assignments(demo):
    assert demo.name == DEMO_CLASS_NAME
    assert demo.teacher.username == "teacher"
    roster = set(demo.students.values_list("username", flat=True))
    assert {"student", "student2"} <= roster
    simulated = demo.students.filter(username__startswith=USERNAME_PREFIX)
    assert 18 <= simulated.count() <= 22 and len(roster) == simulated.count() + 2
    assert all(not user.has_usable_password() for user in simulated)
    assert all(user.first_name and user.last_name for user in simulated)
    # The demo logins keep their own passwords.
    assert get_user_model().objects.get(username="student").check_password(PASSWORD)

    now = timezone.now()
    due = list(demo.assignments.values_list("due_at", flat=True))
    assert len(due) == 4
    assert sum(d < now for d in due) == 3 and sum(d > now for d in due) == 1
    for assignment in demo.assignments.all():
        assert assignment.problems.count() == 3
        assert all(p.source == Problem.Source.MATHDIAL for p in assignment.problems.all())


def test_a_few_weeks_of_history_from_mathdial(demo):
    now = timezone.now()
    sessions = TutoringSession.objects.filter(classroom=demo)
    assert sessions.count() >= 100
    created = sorted(sessions.values_list("created_at", flat=True))
    assert now - created[0] >= dt.timedelta(days=14)
    assert created[-1] <= now
    days = {c.date() for c in created}
    assert len(days) >= 10  # spread over the weeks, not one burst
    messages = Message.objects.filter(session__classroom=demo)
    assert messages.filter(created_at__gt=now).count() == 0
    assert sessions.filter(updated_at__gt=now).count() == 0
    for session in sessions.order_by("id")[:20]:
        times = [m.created_at for m in session.messages.all()]
        assert session.created_at == times[0] and session.updated_at >= times[-1]

    # Tutor turns are MathDial's teacher turns; every session opens with the student.
    teacher_turns = {
        turn.text for record in read_mathdial(mathdial_path()) for turn in record.turns
    }
    tutor = messages.filter(role=Message.Role.TUTOR)
    exact = sum(text in teacher_turns for text in tutor.values_list("text", flat=True))
    assert exact >= 0.6 * tutor.count()  # the rest are renamed or joined turns
    assert all(
        s.messages.order_by("created_at", "id").first().role == Message.Role.STUDENT
        for s in sessions.order_by("id")[:20]
    )
    version = base_version()
    assert tutor.exclude(model_version=version).count() == 0
    assert tutor.filter(leaked_answer__isnull=True).count() == 0


def test_answers_outcomes_and_progress_differ(demo):
    sessions = TutoringSession.objects.filter(classroom=demo)
    solved = sessions.filter(outcome=TutoringSession.Outcome.SOLVED)
    assert solved.exists() and sessions.exclude(outcome=TutoringSession.Outcome.SOLVED).exists()
    assert all(s.status == TutoringSession.Status.CLOSED and s.solved_at for s in solved)
    # Some wrong then right; some never solved after several wrong answers.
    wrong_then_right = [
        s for s in solved if list(s.attempts.values_list("correct", flat=True))[:1] == [False]
    ]
    assert wrong_then_right
    stuck = sessions.filter(status=TutoringSession.Status.OPEN, attempts__correct=False)
    assert stuck.exists()
    for session in solved[:20]:
        answers = list(session.attempts.order_by("created_at", "id"))
        assert answers[-1].correct and answers[-1].answer == session.problem.final_answer
        assert session.solved_at == answers[-1].created_at
    # Students' progress differs.
    per_student = {}
    for student, outcome in sessions.values_list("student__username", "outcome"):
        done, total = per_student.get(student, (0, 0))
        per_student[student] = (done + (outcome == "solved"), total + 1)
    rates = {round(done / total, 2) for done, total in per_student.values()}
    assert len(per_student) >= 18 and len(rates) >= 5
    # The demo login has something left to try in the upcoming assignment.
    upcoming = demo.assignments.get(due_at__gt=timezone.now())
    tried = set(
        sessions.filter(student__username="student", assignment=upcoming).values_list(
            "problem_id", flat=True
        )
    )
    assert set(upcoming.problems.values_list("id", flat=True)) - tried


def test_ratings_and_flags(demo):
    flags = Flag.objects.filter(session__classroom=demo)
    kinds = set(flags.values_list("kind", flat=True))
    assert {Flag.Kind.ANSWER_LEAK, Flag.Kind.BLOCKED_LEAK, Flag.Kind.UNSAFE_CONTENT} <= kinds
    assert flags.filter(resolved_at__isnull=True).exists()
    # An answer-leak flag sits on a tutor turn that the automatic check marked.
    for flag in flags.filter(kind=Flag.Kind.ANSWER_LEAK):
        assert flag.message.role == Message.Role.TUTOR and flag.message.leaked_answer
    # A blocked leak: the visible reply passed after a retry, its blocked attempt states the
    # answer, and the student never saw that text.
    blocked = flags.filter(kind=Flag.Kind.BLOCKED_LEAK).first()
    reply = blocked.message
    assert reply.guard == GuardOutcome.RETRIED
    attempt = reply.blocked_replies.get()
    assert attempt.reason == BlockedReply.Reason.ANSWER_LEAK and attempt.detail in attempt.text
    assert attempt.text not in reply.text
    unsafe = flags.get(kind=Flag.Kind.UNSAFE_CONTENT)
    assert unsafe.message.role == Message.Role.STUDENT and unsafe.category and unsafe.severity

    ratings = TurnRating.objects.filter(message__session__classroom=demo)
    assert ratings.count() >= 10
    assert set(ratings.values_list("rater__username", flat=True)) == {"teacher"}
    assert len(set(ratings.values_list("teacher_move", flat=True))) >= 3
    assert ratings.filter(gave_away_answer=True).exists()
    thumbs = ReplyRating.objects.filter(message__session__classroom=demo)
    assert thumbs.filter(helpful=True).exists() and thumbs.filter(helpful=False).exists()
    assert all(t.message.session.student_id == t.student_id for t in thumbs[:30])


# ---- idempotent, seeded, opt-outs -------------------------------------------------------------


def test_running_again_changes_nothing(demo):
    before = counts()
    again = seed_demo_classroom()
    assert not again.created and again.classroom == demo
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "exists" in out.getvalue() and DEMO_CLASS_NAME in out.getvalue()
    assert counts() == before


def test_the_same_history_every_time(demo):
    first = fingerprint(demo)
    TutoringSession.objects.filter(classroom=demo).delete()
    demo.delete()
    second = seed_demo_classroom()
    assert second.created
    assert fingerprint(second.classroom) == first


def test_seed_demo_opt_outs(db, monkeypatch):
    call_command("seed_demo", "--no-classroom", stdout=StringIO())
    assert not Classroom.objects.exists()
    monkeypatch.setenv("TUTOR_DEMO_CLASSROOM", "off")
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert not Classroom.objects.exists() and "skipped" in out.getvalue()
    monkeypatch.setenv("TUTOR_DEMO_CLASSROOM", "maybe")
    with pytest.raises(CommandError, match="TUTOR_DEMO_CLASSROOM"):
        call_command("seed_demo", stdout=StringIO())
    monkeypatch.setenv("TUTOR_DEMO_CLASSROOM", "1")
    call_command("seed_demo", stdout=StringIO())
    assert Classroom.objects.get().name == DEMO_CLASS_NAME


def test_clear_errors_without_accounts_or_data(db, monkeypatch, tmp_path):
    with pytest.raises(CommandError, match="seed_demo first"):
        call_command("seed_demo_classroom", stdout=StringIO())
    call_command("seed_demo", "--no-classroom", stdout=StringIO())
    monkeypatch.setenv("TUTOR_SHARED_DATA", str(tmp_path))
    with pytest.raises(CommandError, match="no MathDial file"):
        call_command("seed_demo_classroom", stdout=StringIO())
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"qid": 1}\n', encoding="utf-8")
    with pytest.raises(CommandError, match=r"broken\.jsonl:1"):
        call_command("seed_demo_classroom", "--mathdial", str(broken), stdout=StringIO())
    assert not Classroom.objects.exists()
    assert not get_user_model().objects.filter(username__startswith=USERNAME_PREFIX).exists()


def test_seeding_takes_a_bounded_number_of_queries(db, django_assert_max_num_queries):
    """Bulk inserts, one transaction: the count does not grow with students or messages."""
    call_command("seed_demo", "--no-classroom", stdout=StringIO())
    with django_assert_max_num_queries(45):
        result = seed_demo_classroom()
    assert result.counts.messages > 1000


# ---- the pages, for the demo teacher, the admin and another teacher ----------------------------


def test_demo_teacher_and_admin_see_real_content(demo):
    session = TutoringSession.objects.filter(classroom=demo, flags__kind="blocked_leak").first()
    for username in ("teacher", "admin"):
        client = client_for(username)
        assert client.get(f"/dashboards/classes/{demo.pk}/").status_code == 200
        summary = client.get(f"/dashboards/classes/{demo.pk}/summary.json").json()
        text = json.dumps(summary)
        assert "Priya" in text and "Sam" in text
        mastery = client.get(f"/dashboards/classes/{demo.pk}/mastery.json")
        assert mastery.status_code == 200 and mastery.json()

        reviews = client.get("/reviews/")
        assert reviews.status_code == 200 and b"Priya" in reviews.content
        review = client.get(f"/reviews/sessions/{session.pk}/")
        assert review.status_code == 200
        assert b'data-blocked-reason="answer_leak"' in review.content
        flags = client.get("/reviews/flags/?status=all")
        assert flags.status_code == 200
        assert b"blocked" in flags.content.lower() and b"unsafe" in flags.content.lower()

        export = client.get(f"/classes/{demo.pk}/export.jsonl")
        lines = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
        assert len(lines) >= 100
        assert "Priya" not in json.dumps(lines)  # anonymised

    assert count_window_problems([demo.pk]) == 12
    today = timezone.now().date()
    assert count_window_problems([demo.pk], today - dt.timedelta(days=7), today) >= 3
    window = build_dataset(scope="demo", classroom_ids=[demo.pk])
    assert window.problems
    kinds = {record["kind"] for record in window.records}
    assert {"rating", "outcome", "blocked", "student_rating"} <= kinds
    assert client_for("admin").get("/retraining/jobs/new/").status_code == 200


def test_another_teacher_sees_none_of_it(demo, make_user):
    other = make_user("ms-other", role="teacher")
    client = Client()
    client.force_login(other)
    session = TutoringSession.objects.filter(classroom=demo).first()
    flag = Flag.objects.filter(session__classroom=demo).first()
    for url in (
        f"/dashboards/classes/{demo.pk}/",
        f"/dashboards/classes/{demo.pk}/summary.json",
        f"/dashboards/classes/{demo.pk}/mastery.json",
        f"/classes/{demo.pk}/",
        f"/classes/{demo.pk}/export.jsonl",
        f"/reviews/sessions/{session.pk}/",
        f"/reviews/sessions/{session.pk}/ratings.json",
    ):
        assert client.get(url).status_code == 404, url
    for url in ("/reviews/", "/reviews/flags/?status=all", "/classes/"):
        page = client.get(url)
        assert page.status_code == 200
        assert b"Priya" not in page.content and DEMO_CLASS_NAME.encode() not in page.content
    assert client.post(f"/reviews/flags/{flag.pk}/resolve/").status_code == 404
    # Nor does a demo student see the class's other students.
    student = client_for("student")
    assert student.get(f"/dashboards/classes/{demo.pk}/").status_code in (403, 404)
    assert student.get(f"/reviews/sessions/{session.pk}/").status_code in (403, 404)


# ---- the base version's first evaluation ------------------------------------------------------


def test_first_evaluation_is_queued_once(db, monkeypatch, django_capture_on_commit_callbacks):
    published = []
    monkeypatch.setattr(
        "tutor.retraining.jobs.publish_task",
        lambda name, *args: published.append((name, args)) or type("R", (), {"id": "t-1"})(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", "--no-classroom", "--evaluate-base", stdout=StringIO())
    run = EvalRun.objects.get()
    assert run.version == base_version() and run.status == EvalRun.Status.QUEUED
    assert run.config["limit"] == evaluation.FIRST_EVALUATION["limit"]
    assert published == [("tutor.retraining.tasks.run_evaluation_task", (run.pk,))]

    with django_capture_on_commit_callbacks(execute=True):
        out = StringIO()
        call_command("seed_demo", "--no-classroom", "--evaluate-base", stdout=out)
    assert "exists" in out.getvalue().splitlines()[-1]
    assert EvalRun.objects.count() == 1 and len(published) == 1

    EvalRun.objects.update(status=EvalRun.Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluation.queue_base_evaluation() is not None
    assert EvalRun.objects.count() == 2 and len(published) == 2
