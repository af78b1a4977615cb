"""Classes, enrolment, assignments, pedagogy instructions and the JSONL export.

Every teacher view is tried by another teacher (404: class ids are not discoverable) and by a
student (403); students reach assignments only through their classes.
"""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues import services
from tutor.dialogues.models import AnswerAttempt, Message, TutoringSession
from tutor.problems.models import Problem
from tutor.reviews.models import Flag, TurnRating

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def student(make_user):
    return make_user("alice_student")


@pytest.fixture
def classroom(teacher):
    return Classroom.objects.create(
        name="Algebra 1", teacher=teacher, pedagogy_instructions="Use the bar model.\n\n"
    )


@pytest.fixture
def bank(problem):
    fractions = Problem.objects.create(
        title="Add fractions",
        text="What is 1/2 + 1/4?",
        final_answer="3/4",
        solution="Common denominator 4.",
        skills=["fractions", "addition"],
        difficulty=1,
    )
    hard_fractions = Problem.objects.create(
        title="Divide fractions",
        text="What is (3/4) / (1/8)?",
        final_answer="6",
        solution="Multiply by 8.",
        skills=["fractions"],
        difficulty=4,
    )
    return {"linear": problem, "fractions": fractions, "hard_fractions": hard_fractions}


@pytest.fixture
def assignment(classroom, bank):
    assignment = Assignment.objects.create(
        classroom=classroom,
        title="Week 1",
        due_at=timezone.now() + timedelta(days=3),
        pedagogy_instructions="Answer in Spanish.",
    )
    assignment.problems.set([bank["linear"], bank["fractions"]])
    return assignment


def teacher_urls(classroom, assignment, student):
    """(method, url) for every teacher view of the class."""
    c = classroom.pk
    return [
        ("get", reverse("classes:detail", args=[c])),
        ("get", reverse("classes:edit", args=[c])),
        ("post", reverse("classes:edit", args=[c])),
        ("post", reverse("classes:regenerate_code", args=[c])),
        ("post", reverse("classes:add_student", args=[c])),
        ("post", reverse("classes:remove_student", args=[c, student.pk])),
        ("get", reverse("classes:export", args=[c])),
        ("get", reverse("classes:assignment_create", args=[c])),
        ("post", reverse("classes:assignment_create", args=[c])),
        ("get", reverse("classes:assignment_edit", args=[c, assignment.pk])),
        ("post", reverse("classes:assignment_edit", args=[c, assignment.pk])),
        ("post", reverse("classes:assignment_delete", args=[c, assignment.pk])),
    ]


# ---- role boundaries --------------------------------------------------------------------------


def test_another_teachers_class_is_not_found_on_every_view(
    client, other_teacher, classroom, assignment, student
):
    Enrollment.objects.create(classroom=classroom, student=student)
    code = classroom.join_code
    client.force_login(other_teacher)
    for method, url in teacher_urls(classroom, assignment, student):
        response = getattr(client, method)(url, {"username": student.username, "name": "x"})
        assert response.status_code == 404, (method, url)
    assert "Algebra 1" not in client.get(reverse("classes:list")).text
    classroom.refresh_from_db()
    assert classroom.join_code == code and classroom.name == "Algebra 1"
    assert Enrollment.objects.filter(classroom=classroom, student=student).exists()
    assert Assignment.objects.filter(pk=assignment.pk).exists()


def test_students_cannot_reach_teacher_views(client, student, classroom, assignment):
    Enrollment.objects.create(classroom=classroom, student=student)
    client.force_login(student)
    urls = [("get", reverse("classes:list")), ("get", reverse("classes:create"))]
    for method, url in urls + teacher_urls(classroom, assignment, student):
        assert getattr(client, method)(url).status_code == 403, (method, url)


def test_anonymous_users_are_sent_to_login(client, classroom, assignment, student):
    for method, url in teacher_urls(classroom, assignment, student):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url


def test_teachers_cannot_use_student_views(client, teacher, classroom, assignment, bank):
    client.force_login(teacher)
    assert client.post(reverse("classes:join"), {"code": classroom.join_code}).status_code == 403
    url = reverse("classes:start_problem", args=[assignment.pk, bank["linear"].pk])
    assert client.post(url).status_code == 403


def test_admin_sees_every_class(client, make_user, classroom):
    client.force_login(make_user("root", role="admin"))
    assert "Algebra 1" in client.get(reverse("classes:list")).text
    assert client.get(reverse("classes:detail", args=[classroom.pk])).status_code == 200
    assert client.get(reverse("classes:export", args=[classroom.pk])).status_code == 200


# ---- teacher pages ----------------------------------------------------------------------------


def test_teacher_creates_a_class_and_manages_the_roster(client, teacher, student, make_user):
    client.force_login(teacher)
    response = client.post(
        reverse("classes:create"),
        {"name": "Geometry", "pedagogy_instructions": "Give at most one hint per turn."},
    )
    classroom = Classroom.objects.get(name="Geometry")
    assert classroom.teacher == teacher
    assert response.url == reverse("classes:detail", args=[classroom.pk])

    page = client.get(response.url)
    assert classroom.join_code in page.text
    assert "Give at most one hint per turn." in page.text

    old_code = classroom.join_code
    client.post(reverse("classes:regenerate_code", args=[classroom.pk]))
    classroom.refresh_from_db()
    assert classroom.join_code != old_code

    add = reverse("classes:add_student", args=[classroom.pk])
    client.post(add, {"username": student.username})
    client.post(add, {"username": student.username})  # idempotent
    assert list(classroom.students.all()) == [student]
    page = client.get(reverse("classes:detail", args=[classroom.pk]))
    assert f'data-student="{student.username}"' in page.text

    make_user("another_teacher", role="teacher")
    for username in ["nobody", "another_teacher"]:
        response = client.post(add, {"username": username}, follow=True)
        assert "There is no student with the username" in response.text
    assert classroom.students.count() == 1

    client.post(
        reverse("classes:edit", args=[classroom.pk]),
        {"name": "Geometry", "pedagogy_instructions": "Use pictures."},
    )
    classroom.refresh_from_db()
    assert classroom.pedagogy_instructions == "Use pictures."

    remove = reverse("classes:remove_student", args=[classroom.pk, student.pk])
    assert client.get(remove).status_code == 405
    assert client.post(remove).status_code == 302
    assert classroom.students.count() == 0
    assert client.post(remove).status_code == 404

    assert "Geometry" in client.get(reverse("classes:list")).text


# ---- joining ----------------------------------------------------------------------------------


def test_student_joins_with_a_code_case_insensitive_and_idempotent(client, student, classroom):
    client.force_login(student)
    messy = f"  {classroom.join_code.lower()}  "
    response = client.post(reverse("classes:join"), {"code": messy}, follow=True)
    assert "You joined" in response.text and "Algebra 1" in response.text
    response = client.post(reverse("classes:join"), {"code": classroom.join_code}, follow=True)
    assert "already in" in response.text
    assert Enrollment.objects.filter(classroom=classroom, student=student).count() == 1


def test_bad_join_code_is_a_clear_error(client, student, classroom):
    client.force_login(student)
    response = client.post(reverse("classes:join"), {"code": "NOPE1234"}, follow=True)
    assert "No class has that code" in response.text
    assert not Enrollment.objects.filter(student=student).exists()
    assert client.get(reverse("classes:join")).status_code == 405


# ---- assignments ------------------------------------------------------------------------------


def problem_ids_on(page) -> set[int]:
    import re

    return {int(pk) for pk in re.findall(r'name="problems" value="(\d+)"', page.text)}


def test_assignment_builder_filters_by_skill_and_difficulty(client, teacher, classroom, bank):
    client.force_login(teacher)
    url = reverse("classes:assignment_create", args=[classroom.pk])
    everything = problem_ids_on(client.get(url))
    assert everything == {p.pk for p in bank.values()}
    fractions = problem_ids_on(client.get(url, {"skill": "fractions"}))
    assert fractions == {bank["fractions"].pk, bank["hard_fractions"].pk}
    hard = problem_ids_on(client.get(url, {"skill": "fractions", "difficulty": "4"}))
    assert hard == {bank["hard_fractions"].pk}
    # A skill is matched as a whole list element, not as a substring.
    assert problem_ids_on(client.get(url, {"skill": "fraction"})) == set()
    assert problem_ids_on(client.get(url, {"difficulty": "junk"})) == everything
    page = client.get(url)
    assert '<option value="linear equations"' in page.text


def test_filter_problems_without_json_containment(monkeypatch, bank):
    """The SQLite path: containment is done in Python."""
    from django.db import connection

    from tutor.classes.services import filter_problems

    monkeypatch.setattr(connection.features, "supports_json_field_contains", False)
    found = filter_problems(Problem.objects.all(), skill="fractions", difficulty=1)
    assert list(found) == [bank["fractions"]]


def test_teacher_creates_edits_and_deletes_an_assignment(client, teacher, classroom, bank):
    client.force_login(teacher)
    url = reverse("classes:assignment_create", args=[classroom.pk])
    response = client.post(url, {"title": "Week 2", "due_at": ""})
    assert response.status_code == 200 and "Pick at least one problem" in response.text
    response = client.post(
        url + "?skill=fractions",
        {
            "title": "Week 2",
            "due_at": "2030-01-15T09:30",
            "pedagogy_instructions": "Ask for a drawing.",
            "problems": [bank["fractions"].pk, bank["hard_fractions"].pk],
        },
    )
    assert response.status_code == 302
    assignment = Assignment.objects.get(title="Week 2")
    assert assignment.classroom == classroom
    assert assignment.due_at.year == 2030 and assignment.due_at.hour == 9
    assert set(assignment.problems.all()) == {bank["fractions"], bank["hard_fractions"]}
    assert "Week 2" in client.get(reverse("classes:detail", args=[classroom.pk])).text

    edit = reverse("classes:assignment_edit", args=[classroom.pk, assignment.pk])
    # Picked problems stay listed (and checked) even when the filters would hide them.
    page = client.get(edit, {"skill": "linear equations"})
    assert problem_ids_on(page) == {p.pk for p in bank.values()}
    client.post(edit, {"title": "Week 2b", "problems": [bank["linear"].pk]})
    assignment.refresh_from_db()
    assert assignment.title == "Week 2b" and assignment.due_at is None
    assert list(assignment.problems.all()) == [bank["linear"]]

    delete = reverse("classes:assignment_delete", args=[classroom.pk, assignment.pk])
    assert client.get(delete).status_code == 405
    client.post(delete)
    assert not Assignment.objects.filter(pk=assignment.pk).exists()


def test_assignment_of_another_class_is_not_found(client, teacher, other_teacher, assignment):
    mine = Classroom.objects.create(name="Mine", teacher=other_teacher)
    client.force_login(other_teacher)
    url = reverse("classes:assignment_edit", args=[mine.pk, assignment.pk])
    assert client.get(url).status_code == 404
    url = reverse("classes:assignment_delete", args=[mine.pk, assignment.pk])
    assert client.post(url).status_code == 404
    assert Assignment.objects.filter(pk=assignment.pk).exists()


# ---- the student side -------------------------------------------------------------------------


def test_student_home_lists_assignments_with_status(client, student, classroom, assignment, bank):
    Enrollment.objects.create(classroom=classroom, student=student)
    late = Assignment.objects.create(
        classroom=classroom, title="Last week", due_at=timezone.now() - timedelta(days=1)
    )
    late.problems.set([bank["hard_fractions"]])
    TutoringSession.objects.create(
        student=student,
        problem=bank["linear"],
        classroom=classroom,
        assignment=assignment,
        outcome=TutoringSession.Outcome.SOLVED,
        status=TutoringSession.Status.CLOSED,
    )
    TutoringSession.objects.create(
        student=student, problem=bank["fractions"], classroom=classroom, assignment=assignment
    )
    client.force_login(student)
    page = client.get("/").text
    assert page.index("Your assignments") < page.index("Free practice")
    assert "Week 1" in page and "Last week" in page and "Overdue" in page
    assert 'data-status="solved"' in page and 'data-status="in_progress"' in page
    assert 'data-status="not_started"' in page
    assert "Algebra 1" in page and 'id="join-form"' in page
    # Free practice on the same problem does not count towards the assignment.
    TutoringSession.objects.filter(assignment=late).delete()
    TutoringSession.objects.create(
        student=student, problem=bank["hard_fractions"], outcome=TutoringSession.Outcome.SOLVED
    )
    from tutor.classes.services import student_assignments

    statuses = {sa.assignment.title: sa for sa in student_assignments(student)}
    assert [p.status for p in statuses["Last week"].problems] == ["not_started"]
    assert statuses["Last week"].overdue and not statuses["Week 1"].overdue


def test_student_home_shows_no_assignments_of_other_classes(client, student, assignment):
    client.force_login(student)
    page = client.get("/").text
    assert "Week 1" not in page and "You are not in a class yet" in page


def test_starting_an_assignment_problem_sets_class_and_assignment(
    client, student, classroom, assignment, bank
):
    Enrollment.objects.create(classroom=classroom, student=student)
    client.force_login(student)
    url = reverse("classes:start_problem", args=[assignment.pk, bank["linear"].pk])
    assert client.get(url).status_code == 405
    first = client.post(url)
    second = client.post(url)
    assert first.status_code == 302 and first.url == second.url
    session = TutoringSession.objects.get(student=student)
    assert session.classroom == classroom and session.assignment == assignment
    assert first.url == reverse("dialogues:chat", args=[session.pk])
    assert client.get(first.url).status_code == 200

    # Free practice on the same problem is a separate session, and resumes only itself.
    free = client.post(reverse("dialogues:start", args=[bank["linear"].pk]))
    assert free.url != first.url
    free_session = TutoringSession.objects.get(student=student, assignment__isnull=True)
    assert free_session.classroom is None
    assert client.post(reverse("dialogues:start", args=[bank["linear"].pk])).url == free.url
    assert client.post(url).url == first.url

    # A problem that is not part of the assignment.
    other = reverse("classes:start_problem", args=[assignment.pk, bank["hard_fractions"].pk])
    assert client.post(other).status_code == 404


def test_student_not_enrolled_cannot_start_an_assignment_problem(
    client, student, make_user, classroom, assignment, bank
):
    client.force_login(student)
    url = reverse("classes:start_problem", args=[assignment.pk, bank["linear"].pk])
    assert client.post(url).status_code == 404
    assert client.post(reverse("classes:start_problem", args=[99999, 1])).status_code == 404
    # Removed from the class: no more access to its assignments.
    Enrollment.objects.create(classroom=classroom, student=student)
    assert client.post(url).status_code == 302
    Enrollment.objects.filter(student=student).delete()
    assert client.post(url).status_code == 404


# ---- pedagogy instructions --------------------------------------------------------------------


def test_pedagogy_instructions_come_from_class_then_assignment(student, classroom, assignment):
    classroom.pedagogy_instructions = "Use the bar model.\n\n  Give at most one hint per turn.  "
    classroom.save()
    session = services.open_session_for(student, assignment.problems.first(), assignment)
    assert services.pedagogy_instructions(session) == [
        "Use the bar model.",
        "Give at most one hint per turn.",
        "Answer in Spanish.",
    ]
    free = services.open_session_for(student, assignment.problems.first())
    assert free.pk != session.pk
    assert services.pedagogy_instructions(free) == []


@pytest.mark.django_db(transaction=True)
async def test_instructions_reach_the_model_server(connect, model_server, make_user, bank):
    from channels.db import database_sync_to_async as sync_to_async

    def arrange():
        teacher = make_user("t_async", role="teacher")
        learner = make_user("s_async")
        classroom = Classroom.objects.create(
            name="Spanish maths", teacher=teacher, pedagogy_instructions="Use the bar model."
        )
        Enrollment.objects.create(classroom=classroom, student=learner)
        assignment = Assignment.objects.create(
            classroom=classroom, title="Tarea", pedagogy_instructions="Answer in Spanish."
        )
        assignment.problems.set([bank["linear"]])
        session = services.open_session_for(learner, bank["linear"], assignment)
        free = services.open_session_for(learner, bank["linear"])
        return learner, session, free

    learner, session, free = await sync_to_async(arrange)()
    for tutoring_session, expect_instructions in [(session, True), (free, False)]:
        ws = await connect(tutoring_session.pk, learner)
        await ws.receive_json_from()
        await ws.send_json_to({"type": "message", "text": "Where do I start?"})
        while (await ws.receive_json_from(timeout=10))["type"] != "reply.end":
            pass
        system = model_server.requests[-1]["messages"][0]["content"]
        assert ("Use the bar model." in system) is expect_instructions
        assert ("Answer in Spanish." in system) is expect_instructions
        if expect_instructions:
            assert system.index("Use the bar model.") < system.index("Answer in Spanish.")
        await ws.disconnect()


# ---- export -----------------------------------------------------------------------------------


def read_export(client, classroom) -> list[dict]:
    response = client.get(reverse("classes:export", args=[classroom.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    return body, [json.loads(line) for line in body.splitlines()]


@pytest.fixture
def worked_class(teacher, make_user, classroom, assignment, bank):
    """Two students with sessions, messages, attempts, ratings and a flag."""
    bob = make_user("bob_student")
    alice = make_user("alice_student")
    for s in (alice, bob):
        Enrollment.objects.create(classroom=classroom, student=s)
    sessions = []
    for s in (alice, bob):
        session = services.open_session_for(s, bank["linear"], assignment)
        ask = Message.objects.create(session=session, role="student", text="How do I start?")
        reply = Message.objects.create(
            session=session,
            role="tutor",
            text="What could you do to both sides?",
            thinking="Answer is 6; do not say it.",
            model_name="tutor-v1",
            prompt_tokens=40,
            completion_tokens=12,
            time_to_first_token_ms=80,
            duration_ms=400,
            leaked_answer=False,
        )
        AnswerAttempt.objects.create(session=session, answer="6", correct=True)
        sessions.append((session, ask, reply))
    TutoringSession.objects.filter(pk=sessions[0][0].pk).update(outcome="solved", status="closed")
    TurnRating.objects.create(
        message=sessions[0][2],
        rater=teacher,
        helpful=5,
        no_answer_reveal=5,
        correct=4,
        encourages_thinking=5,
        teacher_move="probing",
        comment="alice_student did well",
    )
    Flag.objects.create(
        session=sessions[1][0],
        message=sessions[1][1],
        kind=Flag.Kind.UNSAFE_CONTENT,
        severity=Flag.Severity.HIGH,
        category="violence",
        detail="bob_student wrote something",
    )
    # Free practice is not part of the class export.
    services.open_session_for(alice, bank["fractions"])
    return {"alice": alice, "bob": bob, "sessions": sessions}


def test_export_is_complete_and_anonymised(client, teacher, classroom, assignment, worked_class):
    client.force_login(teacher)
    body, records = read_export(client, classroom)
    for secret in ["alice_student", "bob_student", "Alice_Student", teacher.username, "Mrs_Teach"]:
        assert secret not in body
    assert len(records) == 2
    (alice_session, _, alice_reply), (bob_session, bob_ask, _) = worked_class["sessions"]
    by_id = {r["session_id"]: r for r in records}
    alice, bob = by_id[alice_session.pk], by_id[bob_session.pk]
    assert alice["student"] != bob["student"] and alice["student"].startswith("s_")
    assert alice["schema"] == "tutor.session-export.v1"
    assert alice["assignment_id"] == assignment.pk
    assert alice["problem"]["final_answer"] == "6" and alice["problem"]["title"] == "Solve for x"
    assert alice["outcome"] == "solved" and bob["outcome"] == "pending"
    assert alice["attempts"] == [
        {"answer": "6", "correct": True, "created_at": alice["attempts"][0]["created_at"]}
    ]
    assert alice["pedagogy_instructions"] == ["Use the bar model.", "Answer in Spanish."]
    roles = [m["role"] for m in alice["messages"]]
    assert roles == ["student", "tutor"]
    tutor_turn = alice["messages"][1]
    assert tutor_turn["id"] == alice_reply.pk
    assert tutor_turn["thinking"] == "Answer is 6; do not say it."
    assert (tutor_turn["prompt_tokens"], tutor_turn["completion_tokens"]) == (40, 12)
    assert (tutor_turn["time_to_first_token_ms"], tutor_turn["duration_ms"]) == (80, 400)
    assert tutor_turn["leaked_answer"] is False and tutor_turn["model_name"] == "tutor-v1"
    [rating] = tutor_turn["ratings"]
    assert rating["rater"].startswith("r_") and rating["teacher_move"] == "probing"
    assert (rating["helpful"], rating["correct"], rating["gave_away_answer"]) == (5, 4, False)
    assert "comment" not in rating
    [flag] = bob["flags"]
    assert flag["kind"] == "unsafe_content" and flag["severity"] == "high"
    assert flag["message_id"] == bob_ask.pk and flag["resolved"] is False
    assert "detail" not in flag

    # Ids are stable across exports of the class.
    _, again = read_export(client, classroom)
    assert [r["student"] for r in again] == [r["student"] for r in records]


def test_export_ids_differ_between_classes(worked_class, classroom):
    from tutor.classes.export import anonymise

    other = Classroom.objects.create(name="Other", teacher=classroom.teacher)
    alice = worked_class["alice"].pk
    assert anonymise(classroom.pk, "student", alice) != anonymise(other.pk, "student", alice)
    assert anonymise(classroom.pk, "student", alice) != anonymise(classroom.pk, "rater", alice)


def test_export_queries_do_not_grow_with_sessions(
    client, teacher, classroom, worked_class, django_assert_max_num_queries, bank, make_user
):
    client.force_login(teacher)
    for i in range(10):
        learner = make_user(f"extra{i}")
        session = TutoringSession.objects.create(
            student=learner, problem=bank["fractions"], classroom=classroom
        )
        for _ in range(3):
            Message.objects.create(session=session, role="student", text="hi")
    # session + user lookups, the class, then one batch: sessions, attempts, messages,
    # teachers' ratings, students' ratings, blocked attempts, flags
    with django_assert_max_num_queries(10):
        _, records = read_export(client, classroom)
    assert len(records) == 12


def test_export_pages_through_batches(client, teacher, classroom, worked_class, monkeypatch, bank):
    from tutor.classes import export

    for _ in range(4):
        TutoringSession.objects.create(
            student=worked_class["bob"], problem=bank["fractions"], classroom=classroom
        )
    monkeypatch.setattr(export, "BATCH_SIZE", 2)
    client.force_login(teacher)
    _, records = read_export(client, classroom)
    ids = [r["session_id"] for r in records]
    assert len(ids) == 6 and ids == sorted(set(ids))


@pytest.mark.django_db(transaction=True)
async def test_export_streams_under_asgi(async_client, teacher, classroom, worked_class):
    from channels.db import database_sync_to_async as sync_to_async

    await sync_to_async(async_client.force_login)(teacher)
    response = await async_client.get(reverse("classes:export", args=[classroom.pk]))
    assert response.status_code == 200 and response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    await sync_to_async(response.close)()  # request_finished: closes the thread's connection
    records = [json.loads(line) for line in body.splitlines()]
    assert len(records) == 2 and "alice_student" not in body
