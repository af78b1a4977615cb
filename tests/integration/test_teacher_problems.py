"""Teachers' own problems: who reaches what (another teacher's unshared problem is "not
found"), the editor's validation, archiving, the assignment builder's choices, free practice,
"try an answer" under hostile input, and importing CSV and JSONL files with bad rows."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.integration.test_role_sweep import (
    FORBIDDEN,
    LOGIN,
    NOT_ALLOWED,
    NOT_FOUND,
    OK,
    ROLES,
    build_world,
    client_for,
    outcome,
    row,
)
from tutor.classes.models import Assignment, Classroom
from tutor.dialogues.models import TutoringSession
from tutor.problems.import_files import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS
from tutor.problems.models import Problem

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

STAFF_PAGE = row(LOGIN, FORBIDDEN, OK, OK, OK)
POST_ONLY = row(LOGIN, FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED)
# What each role gets on the problem pages when the problem in the URL is the bank's (the
# sweep's world): any teacher reads it, only an admin edits it.
PROBLEM_PAGES = {
    "problems:list": STAFF_PAGE,
    "problems:create": STAFF_PAGE,
    "problems:import": STAFF_PAGE,
    "problems:check": POST_ONLY,
    "problems:detail": STAFF_PAGE,
    "problems:edit": row(LOGIN, FORBIDDEN, NOT_FOUND, NOT_FOUND, OK),
    "problems:archive": POST_ONLY,
    "problems:restore": POST_ONLY,
}

VALID = {
    "title": "",
    "text": "A recipe uses $\\frac{3}{4}$ cup of sugar per cake. How much for 2 cakes?",
    "final_answer": "3/2",
    "solution": "$2 \\cdot \\frac{3}{4} = \\frac{3}{2}$ cups.",
    "skills": "fractions, word problems",
    "difficulty": "2",
}


@pytest.fixture(autouse=True)
def clean_cache():
    # Rate limits and cool-downs live in the cache (the tests' own Redis database).
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def student(make_user):
    return make_user("pupil")


@pytest.fixture
def admin(make_user):
    user = make_user("boss", role="admin")
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


def own_problem(owner, *, shared: bool = False, active: bool = True, **fields) -> Problem:
    values = {
        "title": f"Secret problem of {owner.username}",
        "text": "What is $2 + 2$?",
        "final_answer": "4",
        "solution": "Count.",
        "skills": [f"{owner.username}-skill"],
        "difficulty": 1,
        **fields,
    }
    return Problem.objects.create(owner=owner, shared=shared, is_active=active, **values)


def part(html: str, start: str, end: str) -> str:
    """The page from ``start`` to the first ``end`` after it (one list or form)."""
    i = html.index(start)
    return html[i : html.index(end, i)]


def listed(client, **query) -> str:
    return part(client.get(reverse("problems:list"), query).text, 'id="problem-list"', "</ul>")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ---- who reaches what ---------------------------------------------------------------------------


@pytest.fixture
def world(make_user, problem, settings):
    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"
    return build_world(make_user, problem)


def problem_urls(problem_id: int) -> dict[str, str]:
    """Every URL of the problems app, its problem argument filled."""
    from tutor.problems.urls import urlpatterns

    urls = {}
    for pattern in urlpatterns:
        kwargs = {"problem_id": problem_id} if "<int:problem_id>" in str(pattern.pattern) else {}
        urls[f"problems:{pattern.name}"] = reverse(f"problems:{pattern.name}", kwargs=kwargs)
    return urls


def test_every_problem_url_is_covered_for_every_role(world):
    """The role sweep's world and its table's outcomes, for this app's URLs (the sweep's own
    table, test_role_sweep.EXPECTED, must list the same)."""
    urls = problem_urls(world["problem"].pk)
    assert set(urls) == set(PROBLEM_PAGES)
    wrong = []
    for role in ROLES:
        client = client_for(world, role)
        for key, url in urls.items():
            got = outcome(client.get(url))
            if got != PROBLEM_PAGES[key][role]:
                wrong.append(f"{role} GET {url}: {got}, expected {PROBLEM_PAGES[key][role]}")
    assert not wrong, "\n".join(wrong)


def test_every_problem_url_refuses_another_teachers_unshared_problem(world):
    """The same sweep with an unshared problem of the class teacher: the other teacher gets
    "not found" wherever the teacher gets the page."""
    secret = own_problem(world["users"]["teacher"])
    teacher = client_for(world, "teacher")
    other = client_for(world, "other_teacher")
    for key, url in problem_urls(secret.pk).items():
        if "<int:problem_id>" not in url and str(secret.pk) not in url:
            continue
        mine, theirs = outcome(teacher.get(url)), outcome(other.get(url))
        assert (mine, theirs) in ((OK, NOT_FOUND), (NOT_ALLOWED, NOT_ALLOWED)), (key, mine, theirs)
        if mine == NOT_ALLOWED:  # POST only: the other teacher's POST is "not found" too
            assert other.post(url).status_code == 404, key
            assert teacher.post(url).status_code == 302, key


def test_another_teachers_unshared_problem_is_not_found(teacher, other_teacher):
    secret = own_problem(teacher)
    client = logged_in(other_teacher)
    missing = Problem.objects.order_by("-pk").first().pk + 1000
    for problem_id in (secret.pk, missing):
        assert client.get(reverse("problems:detail", args=[problem_id])).status_code == 404
        assert client.get(reverse("problems:edit", args=[problem_id])).status_code == 404
        response = client.post(reverse("problems:edit", args=[problem_id]), VALID)
        assert response.status_code == 404
        for action in ("problems:archive", "problems:restore"):
            assert client.post(reverse(action, args=[problem_id])).status_code == 404
    secret.refresh_from_db()
    assert secret.is_active and secret.text == "What is $2 + 2$?"
    # Nor is it listed anywhere the other teacher looks.
    for tab in ("mine", "shared", "archived"):
        page = client.get(reverse("problems:list"), {"tab": tab})
        assert secret.title not in page.text


def test_a_shared_problem_is_read_only_to_other_teachers(teacher, other_teacher):
    shared = own_problem(teacher, shared=True)
    client = logged_in(other_teacher)
    page = client.get(reverse("problems:detail", args=[shared.pk]))
    assert page.status_code == 200
    assert shared.title in page.text and 'id="edit-problem"' not in page.text
    assert 'id="archive-form"' not in page.text
    assert client.get(reverse("problems:edit", args=[shared.pk])).status_code == 404
    assert client.post(reverse("problems:archive", args=[shared.pk])).status_code == 404
    assert shared.title in client.get(reverse("problems:list"), {"tab": "shared"}).text
    shared.refresh_from_db()
    assert shared.is_active


def test_every_problem_post_needs_a_csrf_token(teacher):
    mine = own_problem(teacher)
    client = Client(enforce_csrf_checks=True)
    client.force_login(teacher)
    for key, url in problem_urls(mine.pk).items():
        if key in ("problems:list", "problems:detail"):  # GET only, as OPTIONS says
            assert "POST" not in client.options(url)["Allow"], key
            continue
        response = client.post(url, {**VALID, "answer": "4"})
        assert response.status_code == 403, key
        assert b"CSRF verification failed" in response.content, key
    mine.refresh_from_db()
    assert mine.is_active and mine.title == "Secret problem of ms-rivera"


def test_students_never_reach_the_editor(student, teacher):
    mine = own_problem(teacher, shared=True)
    client = logged_in(student)
    for url in (
        reverse("problems:list"),
        reverse("problems:create"),
        reverse("problems:import"),
        reverse("problems:detail", args=[mine.pk]),
        reverse("problems:edit", args=[mine.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("problems:create"), VALID).status_code == 403
    assert client.post(reverse("problems:archive", args=[mine.pk])).status_code == 403
    response = client.post(reverse("problems:check"), {"answer": "4", "final_answer": "4"})
    assert response.status_code == 403
    assert Problem.objects.filter(owner__isnull=False).count() == 1


def test_admins_reach_every_problem(admin, teacher):
    secret = own_problem(teacher)
    client = logged_in(admin)
    assert client.get(reverse("problems:detail", args=[secret.pk])).status_code == 200
    assert client.get(reverse("problems:edit", args=[secret.pk])).status_code == 200


# ---- writing, editing, archiving ----------------------------------------------------------------


def test_a_teacher_writes_edits_and_archives_a_problem(teacher):
    client = logged_in(teacher)
    response = client.post(
        reverse("problems:create"), {**VALID, "require_simplest_form": "on"}, follow=True
    )
    assert response.status_code == 200
    problem = Problem.objects.get(owner=teacher)
    assert problem.source == Problem.Source.CUSTOM
    assert problem.title == "A recipe uses $\\frac{3}{4}$ cup of sugar per cake"
    assert problem.skills == ["fractions", "word problems"]
    assert problem.require_simplest_form and not problem.shared
    assert 'data-markdown id="problem-text"' in response.text

    edit = reverse("problems:edit", args=[problem.pk])
    assert client.get(edit).status_code == 200
    client.post(edit, {**VALID, "title": "Sugar", "difficulty": "3", "shared": "on"})
    problem.refresh_from_db()
    assert (problem.title, problem.difficulty, problem.shared) == ("Sugar", 3, True)

    client.post(reverse("problems:archive", args=[problem.pk]))
    problem.refresh_from_db()
    assert not problem.is_active
    assert "Sugar" not in listed(client)
    assert "Sugar" in listed(client, tab="archived")
    client.post(reverse("problems:restore", args=[problem.pk]))
    problem.refresh_from_db()
    assert problem.is_active


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"final_answer": "5 or 6"}, "final_answer", "must be one value"),
        ({"final_answer": "9^9^9^9^9"}, "final_answer", "more than 3 powers"),
        ({"final_answer": "hello"}, "final_answer", "cannot read as a value"),
        ({"final_answer": "6/8", "require_simplest_form": "on"}, "final_answer", "simplest form"),
        ({"final_answer": "1" * 201}, "final_answer", "at most 200 characters"),
        ({"text": "x" * 5001}, "text", "at most 5000 characters"),
        ({"solution": ""}, "solution", "required"),
        ({"difficulty": "9"}, "difficulty", "valid choice"),
        ({"skills": ",".join(f"s{i}" for i in range(9))}, "skills", "at most 8 skills"),
        ({"text": "nul \x00 byte"}, "text", "Null characters"),
    ],
)
def test_the_editor_refuses_bad_input_with_a_clear_error(teacher, changes, field, message):
    client = logged_in(teacher)
    response = client.post(reverse("problems:create"), {**VALID, **changes})
    assert response.status_code == 400
    assert f'id="error-{field}"' in response.text
    assert message in response.text
    assert not Problem.objects.filter(owner=teacher).exists()


def test_saving_counts_against_the_check_rate(teacher, settings):
    settings.TUTOR_RATE_PROBLEM_CHECKS_PER_MINUTE = 1
    client = logged_in(teacher)
    assert client.post(reverse("problems:create"), VALID).status_code == 302
    response = client.post(reverse("problems:create"), {**VALID, "text": "Another one?"})
    assert response.status_code == 429
    assert "Nothing was saved" in response.text and "Another one?" in response.text
    assert Problem.objects.filter(owner=teacher).count() == 1


def test_archived_problems_stay_on_sessions_and_assignments(teacher, student):
    mine = own_problem(teacher)
    classroom = Classroom.objects.create(name="7A", teacher=teacher)
    assignment = Assignment.objects.create(classroom=classroom, title="Week 1")
    assignment.problems.add(mine)
    session = TutoringSession.objects.create(student=student, problem=mine, classroom=classroom)
    logged_in(teacher).post(reverse("problems:archive", args=[mine.pk]))
    session.refresh_from_db()
    assert session.problem == mine
    assert list(assignment.problems.all()) == [mine]
    # It leaves the builder's list for a new assignment, but stays ticked on the old one.
    client = logged_in(teacher)
    new = client.get(reverse("classes:assignment_create", args=[classroom.pk]))
    assert mine.title not in new.text
    old = client.get(reverse("classes:assignment_edit", args=[classroom.pk, assignment.pk]))
    assert f'value="{mine.pk}" checked' in old.text


# ---- assignments and free practice ---------------------------------------------------------------


def test_the_assignment_builder_offers_bank_own_and_shared_problems_only(
    teacher, other_teacher, problem
):
    mine = own_problem(teacher)
    theirs_shared = own_problem(other_teacher, shared=True, title="Shared one")
    theirs_secret = own_problem(other_teacher, title="Secret one", skills=["secret-skill"])
    archived = own_problem(teacher, active=False, title="Old one")
    classroom = Classroom.objects.create(name="7A", teacher=teacher)
    client = logged_in(teacher)
    url = reverse("classes:assignment_create", args=[classroom.pk])
    page = client.get(url).text
    for shown in (problem, mine, theirs_shared):
        assert f'value="{shown.pk}"' in page
    for hidden in (theirs_secret, archived):
        assert f'value="{hidden.pk}"' not in page
    assert "Secret one" not in page and "secret-skill" not in page

    # Posting the unshared problem's id is refused exactly as an id that does not exist.
    missing = Problem.objects.order_by("-pk").first().pk + 1000
    answers = []
    for problem_id in (theirs_secret.pk, missing):
        response = client.post(url, {"title": "Week 1", "problems": [problem.pk, problem_id]})
        assert response.status_code == 200
        assert "Secret one" not in response.text
        form = part(response.text, 'id="assignment-form"', "</form>")
        form = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", form)
        answers.append(form.replace(str(problem_id), "ID"))
    assert answers[0] == answers[1]
    assert "Select a valid choice" in answers[0]
    assert not Assignment.objects.exists()

    response = client.post(
        url, {"title": "Week 1", "problems": [problem.pk, mine.pk, theirs_shared.pk]}
    )
    assert response.status_code == 302
    assignment = Assignment.objects.get()
    assert set(assignment.problems.all()) == {problem, mine, theirs_shared}


def test_an_admin_may_use_the_class_teachers_problems_but_no_one_elses(
    admin, teacher, other_teacher
):
    mine = own_problem(teacher)
    theirs = own_problem(other_teacher, title="Other one")
    classroom = Classroom.objects.create(name="7A", teacher=teacher)
    page = logged_in(admin).get(reverse("classes:assignment_create", args=[classroom.pk])).text
    assert f'value="{mine.pk}"' in page and f'value="{theirs.pk}"' not in page


def test_free_practice_holds_active_bank_and_shared_problems_only(teacher, problem):
    shared = own_problem(teacher, shared=True)
    own_problem(teacher, title="Unshared")
    own_problem(teacher, shared=True, active=False, title="Archived shared")
    assert set(Problem.objects.free_practice()) == {problem, shared}


# ---- try an answer ------------------------------------------------------------------------------

CHECK_STATUSES = {"correct", "incorrect", "ambiguous", "uncheckable", "bad_final_answer"}


def check(client, answer, final_answer="3/4", **extra):
    return client.post(
        reverse("problems:check"), {"answer": answer, "final_answer": final_answer, **extra}
    )


@pytest.mark.parametrize(
    ("answer", "final_answer", "extra", "status", "message"),
    [
        ("0.75", "3/4", {}, "correct", "marked right"),
        ("three quarters", "3/4", {}, "correct", "marked right"),
        ("6/8", "3/4", {"require_simplest_form": "on"}, "incorrect", "simplest form"),
        ("6/8", "3/4", {}, "correct", "marked right"),
        ("0.7", "3/4", {}, "incorrect", "marked wrong"),
        ("5 or 6", "6", {}, "ambiguous", "give one answer"),
        ("2^2^2^2^2", "6", {}, "uncheckable", "more than 3 powers"),
        ("6", "9^9^9^9^9", {}, "bad_final_answer", "final answer cannot be checked"),
        ("5", "5 or 6", {}, "bad_final_answer", "final answer must be one value"),
        ("215 minutes", "3 h 35 min", {"text": "How many minutes?"}, "correct", "marked right"),
    ],
)
def test_try_an_answer(teacher, answer, final_answer, extra, status, message):
    response = check(logged_in(teacher), answer, final_answer, **extra)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == status
    assert message in body["message"]


def test_try_an_answer_refuses_a_costly_expression_quickly_and_cools_down(teacher):
    client = logged_in(teacher)
    started = time.monotonic()
    body = check(client, "(10**10)**(10**10)", "6").json()
    assert time.monotonic() - started < 5
    assert body["status"] == "uncheckable"
    assert "too long to check" in body["message"]
    # After a check that ran to its time limit, only plain numbers are checked for a while.
    body = check(client, "x**2 + 1", "6").json()
    assert body["status"] == "uncheckable" and "only plain numbers" in body["message"]
    assert check(client, "6", "6").json()["status"] == "correct"


def test_try_an_answer_refuses_deep_nesting_quickly(teacher):
    started = time.monotonic()
    body = check(logged_in(teacher), "(" * 90 + "1" + ")" * 90, "6").json()
    assert time.monotonic() - started < 5
    assert body["status"] in ("uncheckable", "incorrect")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"answer": "1" * 201, "final_answer": "6"}, "at most 200 characters"),
        ({"answer": "", "final_answer": "6"}, "Type an answer to try"),
        ({"answer": "6", "final_answer": ""}, "Write the final answer first"),
        ({"answer": "6", "final_answer": "6", "text": "x" * 5001}, "at most 5000 characters"),
    ],
)
def test_try_an_answer_refuses_bad_input_clearly(teacher, data, message):
    response = logged_in(teacher).post(reverse("problems:check"), data)
    assert response.status_code == 400
    assert response.json()["status"] == "invalid"
    assert message in response.json()["message"]


def test_try_an_answer_refuses_a_huge_body_before_reading_it(teacher):
    client = logged_in(teacher)
    started = time.monotonic()
    response = check(client, "1" * 3_000_000, "6")
    assert time.monotonic() - started < 5
    assert response.status_code == 413
    assert "too long" in response.json()["message"]


def test_try_an_answer_needs_a_csrf_token(teacher):
    client = Client(enforce_csrf_checks=True)
    client.force_login(teacher)
    response = check(client, "6", "6")
    assert response.status_code == 403 and b"CSRF verification failed" in response.content


def test_try_an_answer_is_rate_limited(teacher, settings):
    settings.TUTOR_RATE_PROBLEM_CHECKS_PER_MINUTE = 3
    client = logged_in(teacher)
    for _ in range(3):
        assert check(client, "6", "6").status_code == 200
    response = check(client, "6", "6")
    assert response.status_code == 429
    assert "Too many checks" in response.json()["message"]


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    answer=st.text(max_size=260),
    final_answer=st.one_of(st.sampled_from(["6", "3/4", "$0.75", "x + 1"]), st.text(max_size=40)),
    text=st.text(max_size=80),
)
def test_try_an_answer_never_fails_on_any_text(teacher, settings, answer, final_answer, text):
    settings.TUTOR_RATE_PROBLEM_CHECKS_PER_MINUTE = 10_000
    client = logged_in(teacher)
    started = time.monotonic()
    response = check(client, answer, final_answer, text=text)
    assert time.monotonic() - started < 5
    assert response.status_code in (200, 400)
    body = response.json()
    if response.status_code == 200:
        assert body["status"] in CHECK_STATUSES
    else:
        assert body["status"] == "invalid"
    assert body["message"]


# ---- import -------------------------------------------------------------------------------------


def upload(client, content: bytes, name: str = "problems.csv", **fields):
    file = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(reverse("problems:import"), {"file": file, **fields})


GOOD_CSV = (
    b"title,text,final_answer,solution,skills,difficulty,require_simplest_form\n"
    b'Halves,"What is $\\frac{1}{2} + \\frac{1}{4}$?",3/4,Common denominator 4.,fractions,1,yes\n'
    b',How many minutes are 3 h 35 min?,215,3*60+35.,"time, units",2,no\n'
)

BAD_CSV = (
    b"text,final_answer,solution,difficulty\n"
    b"What is 2 + 2?,4,Count.,1\n"
    b"Pick one,5 or 6,Either.,2\n"
    b"Too hard,9^9^9^9^9,No.,3\n"
    b"\n"
    b"No solution,7,,2\n"
    b'Bad difficulty,7,"Seven, as said.",9\n'
)


def test_import_a_good_csv(teacher):
    client = logged_in(teacher)
    response = upload(client, GOOD_CSV)
    assert response.status_code == 200
    assert "2 imported, 0 rejected" in response.text
    halves, minutes = Problem.objects.filter(owner=teacher).order_by("id")
    assert (halves.title, halves.final_answer, halves.require_simplest_form) == (
        "Halves",
        "3/4",
        True,
    )
    assert minutes.title == "How many minutes are 3 h 35 min?"
    assert minutes.skills == ["time", "units"] and minutes.difficulty == 2
    assert {halves.source, minutes.source} == {Problem.Source.CUSTOM}


def test_import_with_bad_rows_is_all_or_nothing_with_a_report(teacher):
    client = logged_in(teacher)
    response = upload(client, BAD_CSV)
    assert response.status_code == 400
    assert not Problem.objects.filter(owner=teacher).exists()
    assert "Nothing was imported" in response.text
    report = response.text
    assert '<tr data-row="3"><td>3</td><td>final_answer: The final answer must be one value' in (
        report
    )
    assert '<tr data-row="4">' in report and "more than 3 powers" in report
    # Row 5 is blank: counted, as a spreadsheet shows it, and skipped.
    assert '<tr data-row="6"><td>6</td><td>solution: This field is required.' in report
    assert '<tr data-row="7"><td>7</td><td>difficulty: Select a valid choice.' in report
    assert '<tr data-row="2">' not in report

    # The teacher may import the valid rows anyway; uploading again adds nothing twice.
    response = upload(client, BAD_CSV, keep_valid="on")
    assert response.status_code == 200
    assert Problem.objects.filter(owner=teacher).count() == 1
    response = upload(client, BAD_CSV, keep_valid="on")
    assert "0 imported" in response.text and "1 already there" in response.text
    assert Problem.objects.filter(owner=teacher).count() == 1


def test_import_jsonl_with_bad_lines(teacher):
    lines = [
        json.dumps({"text": "What is 6 x 7?", "answer": 42, "solution": "Times table."}),
        "not json",
        json.dumps(["a", "list"]),
        json.dumps({"text": "Skills", "final_answer": "1", "solution": "s", "skills": {"a": 1}}),
        json.dumps({"text": "Shared", "final_answer": "1", "solution": "s", "shared": "maybe"}),
        "[" * 100_000,
        json.dumps({"text": "Also fine", "final_answer": "1/3", "solution": "s", "shared": True}),
    ]
    client = logged_in(teacher)
    response = upload(client, "\n".join(lines).encode(), name="problems.jsonl", keep_valid="on")
    assert response.status_code == 200
    text = response.text
    assert "2 imported, 5 rejected" in text
    for line, reason in [
        (2, "Not valid JSON (Expecting value)"),
        (3, "Not a JSON object"),
        (4, "skills must be text, a number or a list of texts"),
        (5, "shared must be yes or no"),
        (6, "Not valid JSON"),
    ]:
        assert f'<tr data-row="{line}"><td>{line}</td><td>{reason}' in text
    assert set(Problem.objects.filter(owner=teacher).values_list("final_answer", "shared")) == {
        ("42", False),
        ("1/3", True),
    }


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"\xff\xfe" + "text".encode("utf-16-le"), "p.csv", "not UTF-8 text"),
        (b"", "p.csv", "The file is empty"),
        (b"question,answer\n", "p.csv", "has no solution column"),
        (b"text,final_answer,solution\n", "p.csv", "only a header"),
        (b'text,final_answer,solution\n"unclosed,1,2\n', "p.csv", "cannot be read as CSV"),
        (
            b"text,final_answer,solution\n" + b"Q,1,S\n" * (MAX_IMPORT_ROWS + 1),
            "p.csv",
            f"more than {MAX_IMPORT_ROWS} problems",
        ),
        (b"text,text,final_answer,solution\n", "p.csv", "more than once"),
    ],
)
def test_import_refuses_a_bad_file_clearly(teacher, content, name, message):
    response = upload(logged_in(teacher), content, name)
    assert response.status_code == 400
    assert message in response.text
    assert not Problem.objects.filter(owner=teacher).exists()


def test_import_refuses_a_file_over_the_size_limit_before_reading_it(teacher):
    response = upload(logged_in(teacher), b"x" * (MAX_IMPORT_BYTES + 100_000))
    assert response.status_code == 413
    assert "larger than 1 MB" in response.text


def test_import_is_rate_limited(teacher, settings):
    settings.TUTOR_RATE_PROBLEM_IMPORTS_PER_HOUR = 1
    client = logged_in(teacher)
    assert upload(client, GOOD_CSV).status_code == 200
    response = upload(client, GOOD_CSV)
    assert response.status_code == 429 and "Too many imports" in response.text


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.one_of(
        st.binary(max_size=600),
        st.text(max_size=400).map(lambda s: ("text,final_answer,solution\n" + s).encode()),
        st.text(max_size=400).map(lambda s: ('{"text": "' + s).encode()),
    ),
    name=st.sampled_from(["p.csv", "p.jsonl", "p.txt", ""]),
    keep_valid=st.booleans(),
)
def test_import_never_fails_on_any_bytes(teacher, settings, content, name, keep_valid):
    settings.TUTOR_RATE_PROBLEM_IMPORTS_PER_HOUR = 100_000
    settings.TUTOR_RATE_PROBLEM_CHECKS_PER_MINUTE = 100_000
    fields = {"keep_valid": "on"} if keep_valid else {}
    response = upload(logged_in(teacher), content, name or "upload", **fields)
    assert response.status_code in (200, 400)
    assert 'id="import-error"' in response.text or 'id="import-report"' in response.text
