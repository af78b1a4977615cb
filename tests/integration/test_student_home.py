"""The student home's sessions: grouped by assignment or by problem, paged, in a fixed number of
queries however many sessions there are, and never another student's (PostgreSQL)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues import listing
from tutor.dialogues.models import TutoringSession
from tutor.problems.models import Problem

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# Sessions, assignments, problems, the problem bank and the page around them: a constant.
MAX_QUERIES = 12


@pytest.fixture
def student(make_user):
    return make_user("homer")


@pytest.fixture
def classroom(teacher, student):
    classroom = Classroom.objects.create(name="Algebra 1", teacher=teacher)
    Enrollment.objects.create(classroom=classroom, student=student)
    return classroom


def make_problems(count: int, prefix: str = "Problem") -> list[Problem]:
    return Problem.objects.bulk_create(
        Problem(title=f"{prefix} {i:03d}", text=f"What is {i} + 1?", final_answer=str(i + 1))
        for i in range(count)
    )


def make_sessions(student, problems, **fields) -> list[TutoringSession]:
    return TutoringSession.objects.bulk_create(
        TutoringSession(student=student, problem=p, **fields) for p in problems
    )


def rows(page: str) -> list[str]:
    """The problem ids of the session rows, in order."""
    return re.findall(r'class="session-group__row" data-problem-id="(\d+)"', page)


def chat_links(page: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/sessions/(\d+)/"', page)}


def test_sessions_are_grouped_by_assignment_then_free_practice(client, student, classroom, problem):
    first, second = make_problems(2, "Homework")
    week1 = Assignment.objects.create(classroom=classroom, title="Week 1")
    week2 = Assignment.objects.create(classroom=classroom, title="Week 2")
    in_class = {"classroom": classroom}
    make_sessions(student, [first, first], assignment=week1, **in_class)
    TutoringSession.objects.create(
        student=student,
        problem=second,
        assignment=week1,
        outcome=TutoringSession.Outcome.SOLVED,
        **in_class,
    )
    make_sessions(student, [first], assignment=week2, **in_class)
    make_sessions(student, [problem])  # free practice

    client.force_login(student)
    page = client.get("/").text
    sections = re.findall(r'data-section="([^"]+)"', page)
    assert sections == [f"assignment-{week2.pk}", f"assignment-{week1.pk}", "practice"]
    assert page.index("Week 2") < page.index("Week 1") < page.index("Practice on your own")
    # one row per problem within an assignment, with its count, linking the newest session
    week1_part = page[page.index(f'data-section="assignment-{week1.pk}"') :]
    week1_part = week1_part[: week1_part.index("Practice on your own")]
    assert sorted(rows(week1_part)) == sorted([str(first.pk), str(second.pk)])
    assert "2 sessions" in week1_part and "Solved" in week1_part
    newest = TutoringSession.objects.filter(assignment=week1, problem=first).latest("id")
    assert reverse("dialogues:chat", args=[newest.pk]) in week1_part
    # "Your assignments" still comes before the free practice list
    assert page.index("Your assignments") < page.index("Free practice")


def test_sessions_grouped_by_problem_join_every_context(client, student, classroom, problem):
    week1 = Assignment.objects.create(classroom=classroom, title="Week 1")
    make_sessions(student, [problem], assignment=week1, classroom=classroom)
    make_sessions(student, [problem, problem])
    (other,) = make_problems(1, "Other")
    make_sessions(student, [other])

    client.force_login(student)
    page = client.get("/?by=problem").text
    assert 'data-grouping="problem"' in page
    assert sorted(rows(page)) == sorted([str(problem.pk), str(other.pk)])
    assert "3 sessions" in page and "1 session " in page


def test_sessions_are_paged(client, student):
    problems = make_problems(45)
    make_sessions(student, problems)
    client.force_login(student)

    pages = [client.get(f"/?by=problem&page={n}").text for n in (1, 2, 3)]
    listed = [rows(page) for page in pages]
    assert [len(r) for r in listed] == [20, 20, 5]
    everything = [pid for r in listed for pid in r]
    assert sorted(map(int, everything)) == sorted(p.pk for p in problems), "each exactly once"
    assert "page 2 of 3" in pages[1]
    assert 'rel="prev"' in pages[1] and 'rel="next"' in pages[1]
    assert 'rel="prev"' not in pages[0] and 'rel="next"' not in pages[2]


@pytest.mark.parametrize(
    ("query", "notice", "shown"),
    [
        ("?page=abc", "not a number", 1),
        ("?page=99", "There is no page 99; showing page 2", 2),
        ("?page=0", "There is no page 0", 2),
        ("?by=<script>", "no such grouping", 1),
    ],
)
def test_bad_paging_input_gets_a_clear_notice(client, student, query, notice, shown):
    make_sessions(student, make_problems(25))
    client.force_login(student)
    response = client.get("/" + query)
    assert response.status_code == 200
    page = response.text
    assert notice in page and f"page {shown} of 2" in page
    assert "<script>" not in page


def test_another_students_sessions_are_never_listed(client, make_user, student, problem):
    classmate = make_user("classmate")
    (secret,) = make_problems(1, "Classmate's problem")
    theirs = make_sessions(classmate, [secret, problem] * 30)
    mine = make_sessions(student, [problem])
    client.force_login(student)
    for query in ("", "?by=problem", "?by=assignment&page=2"):
        page = client.get("/" + query).text
        assert chat_links(page) == {mine[0].pk}
        assert "Classmate&#x27;s problem 000</a>" not in page
        assert not chat_links(page) & {s.pk for s in theirs}
    assert [row.problem.pk for row in listing.session_groups(student, None, None).rows] == [
        problem.pk
    ]


def test_the_home_page_costs_a_bounded_number_of_queries(
    client, student, classroom, django_assert_max_num_queries
):
    week1 = Assignment.objects.create(classroom=classroom, title="Week 1")
    problems = make_problems(60)
    week1.problems.set(problems[:10])
    client.force_login(student)
    client.get("/")  # warm the session and content types
    with django_assert_max_num_queries(MAX_QUERIES):
        assert client.get("/").status_code == 200
    make_sessions(student, problems[:30], assignment=week1, classroom=classroom)
    make_sessions(student, problems * 3)
    for by in ("assignment", "problem"):
        with django_assert_max_num_queries(MAX_QUERIES):
            page = client.get(f"/?by={by}&page=2").text
        assert len(rows(page)) == listing.ROWS_PER_PAGE


def test_the_problem_bank_is_paged(client, student):
    make_problems(60, "Bank")
    client.force_login(student)
    first = client.get("/").text
    assert first.count('class="problem-item" data-problem-id=') == listing.PROBLEMS_PER_PAGE
    last = client.get("/?problems_page=3").text
    assert "page 3 of 3" in last
    assert client.get("/?problems_page=x").text.count("not a number") == 1


def test_staff_get_their_own_home(client, teacher):
    client.force_login(teacher)
    response = client.get("/")
    assert response.status_code == 200
    assert 'id="your-sessions"' not in response.text
