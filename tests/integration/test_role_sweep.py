"""Every URL pattern of the project, visited (GET) by every kind of user, against an explicit
table of what each one must get.

The patterns are read from the resolver, so a new page is found without being listed here;
the test fails until the table says who may see it. ``build_world`` creates one real object
of each kind (shared with test_csrf_sweep.py) and ``sweep_urls`` fills every pattern's
arguments from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern
from django.utils import timezone

from tests.support.retraining import GOOD, finished_eval, make_version
from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues.models import Message, TutoringSession
from tutor.problems.models import ProblemCalibration
from tutor.retraining import services as retraining_services
from tutor.retraining.models import Promotion, TrainingJob
from tutor.reviews.models import Flag, TurnRating

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

ROLES = ("anonymous", "student", "other_teacher", "teacher", "admin")

# ---- the world --------------------------------------------------------------------------------


def build_world(make_user, problem) -> dict[str, Any]:
    """A class with its teacher, an enrolled student, an assignment and a session with a flag
    and a rating; another teacher with a class of their own; an admin; and one object of every
    model the Django admin lists (its change pages need one)."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    teacher = make_user("sweep-teacher", role="teacher")
    other_teacher = make_user("sweep-other-teacher", role="teacher")
    student = make_user("sweep-student")
    admin = make_user("sweep-admin", role="admin")
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])

    classroom = Classroom.objects.create(name="Sweep 7A", teacher=teacher)
    Classroom.objects.create(name="Sweep 8B", teacher=other_teacher)
    enrollment = Enrollment.objects.create(classroom=classroom, student=student)
    assignment = Assignment.objects.create(classroom=classroom, title="Sweep homework")
    assignment.problems.add(problem)
    session = TutoringSession.objects.create(
        student=student, problem=problem, classroom=classroom, assignment=assignment
    )
    Message.objects.create(session=session, role=Message.Role.STUDENT, text="Is it 5?")
    tutor_message = Message.objects.create(
        session=session, role=Message.Role.TUTOR, text="What is $3 \\cdot 5 + 7$?"
    )
    flag = Flag.objects.create(
        session=session,
        message=tutor_message,
        kind=Flag.Kind.ANSWER_LEAK,
        severity=Flag.Severity.MEDIUM,
        detail="The tutor may have said the answer.",
    )
    rating = TurnRating.objects.create(message=tutor_message, rater=teacher, helpful=4)

    base = retraining_services.base_version()
    job = TrainingJob.objects.create(
        created_by=admin,
        base_version=base,
        config={"steps": 2, "lambda_": 0.5},
        total_steps=2,
        status=TrainingJob.Status.SUCCEEDED,
        step=2,
        finished_at=timezone.now(),
    )
    version = make_version("sweep-tutor-v1", training_job=job, metrics={"reward_mean": 0.5})
    job.result_version = version
    job.save(update_fields=["result_version"])
    eval_run = finished_eval(version, GOOD)
    promotion = Promotion.objects.create(version=version, classroom=classroom, promoted_by=admin)

    group = Group.objects.create(name="sweep-group")
    request = {"user_agent": "sweep", "ip_address": "127.0.0.1", "http_accept": "*/*"}
    access = {"username": student.username, "path_info": "/accounts/login/", **request}
    attempt = AccessAttempt.objects.create(
        get_data="", post_data="", failures_since_start=1, **access
    )
    access_log = AccessLog.objects.create(**access)
    failure_log = AccessFailureLog.objects.create(**access)

    calibration = ProblemCalibration.objects.create(
        problem=problem, student_model="smollm2-135m-instruct", k=8, solve_rate=0.25
    )
    objects = [
        group, student, problem, session, classroom, enrollment, assignment, rating, flag,
        version, promotion, job, eval_run, attempt, access_log, failure_log, calibration,
    ]  # fmt: skip
    return {
        "users": {
            "student": student,
            "teacher": teacher,
            "other_teacher": other_teacher,
            "admin": admin,
        },
        "classroom": classroom,
        "assignment": assignment,
        "problem": problem,
        "student": student,
        "session": session,
        "tutor_message": tutor_message,
        "flag": flag,
        "job": job,
        "version": version,
        "base": base,
        "eval_run": eval_run,
        "admin_objects": {type(obj)._meta.label_lower: obj for obj in objects},
    }


# ---- the URL patterns, filled from the world ---------------------------------------------------


@dataclass
class SweepURL:
    key: str  # the pattern's qualified name, or its route when it has none
    route: str
    url: str


def _patterns(patterns, levels=()):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, (*levels, pattern))
        else:
            yield (*levels, pattern)


def _qualified_name(levels) -> str | None:
    *resolvers, pattern = levels
    if not pattern.name:
        return None
    return ":".join([r.namespace for r in resolvers if r.namespace] + [pattern.name])


ROUTE_ARGUMENT = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


def _fill_regex(regex: str, value_for) -> str:
    """A regular expression route with each named group replaced by its value (groups may
    nest parentheses, as the admin's app list does)."""
    out, i = [], 0
    regex = regex.removeprefix("^").removesuffix("$")
    while i < len(regex):
        if regex.startswith("(?P<", i):
            name = regex[i + 4 : regex.index(">", i)]
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(regex[j], 0)
                j += 1
                if depth == 0:
                    break
            out.append(str(value_for(name)))
            i = j
        elif regex[i] == "\\":
            out.append(regex[i + 1])
            i += 2
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


def _admin_object(world, route: str):
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if match is None:
        raise LookupError(f"no model in the admin route {route}")
    model = apps.get_model(match[1], match[2])
    obj = world["admin_objects"].get(model._meta.label_lower)
    if obj is None:
        raise LookupError(f"build_world made no {model._meta.label} for {route}")
    return obj.pk


def _value(world, route: str, name: str):
    simple = {
        "class_id": world["classroom"].pk,
        "classroom_id": world["classroom"].pk,
        "assignment_id": world["assignment"].pk,
        "problem_id": world["problem"].pk,
        "student_id": world["student"].pk,
        "session_id": world["session"].pk,
        "message_id": world["tutor_message"].pk,
        "flag_id": world["flag"].pk,
        "job_id": world["job"].pk,
        "version_id": world["version"].pk,
        "eval_id": world["eval_run"].pk,
        "uidb64": "MQ",
        "token": "not-a-token",
        # The admin's own arguments.
        "app_label": "classes",
        "url": "no-such-admin-page/",
    }
    if route.startswith("admin/r/"):  # view on site: a content type and an object
        simple["content_type_id"] = ContentType.objects.get_for_model(Classroom).pk
        simple["object_id"] = world["classroom"].pk
    if name in simple:
        return simple[name]
    if name in ("object_id", "id") and route.startswith("admin/"):
        return _admin_object(world, route)
    raise LookupError(f"no value for the argument <{name}> of {route}: add it to _value()")


# Query strings some pages need to show more than a "choose first" redirect.
QUERIES = {
    "retraining:compare": lambda world: f"?a={world['base'].pk}&b={world['version'].pk}",
}


def sweep_urls(world) -> list[SweepURL]:
    """Every URL pattern of the project, with its arguments filled from ``world``. Raises if
    one cannot be filled or does not resolve back to itself."""
    found = []
    for levels in _patterns(get_resolver().url_patterns):
        route = "".join(str(level.pattern) for level in levels)
        key = _qualified_name(levels) or route
        parts = []
        for level in levels:
            if isinstance(level.pattern, RoutePattern):
                parts.append(
                    ROUTE_ARGUMENT.sub(
                        lambda m, route=route: str(_value(world, route, m["name"])),
                        str(level.pattern),
                    )
                )
            else:
                parts.append(
                    _fill_regex(str(level.pattern), lambda n, route=route: _value(world, route, n))
                )
        url = "/" + "".join(parts)
        match = resolve(url)
        assert match.route.replace("^", "") == route.replace("^", ""), (
            f"{url}, filled from {route}, resolves to {match.route}"
        )
        query = QUERIES[key](world) if key in QUERIES else ""
        found.append(SweepURL(key=key, route=route, url=url + query))
    return found


def client_for(world, role: str, **kwargs) -> Client:
    client = Client(**kwargs)
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


# ---- what each role gets ----------------------------------------------------------------------

LOGIN = "login"  # a redirect to the login page
ADMIN_LOGIN = "admin login"  # a redirect to the Django admin's login page
REDIRECT = "redirect"  # a redirect elsewhere
OK, FORBIDDEN, NOT_FOUND, NOT_ALLOWED = 200, 403, 404, 405


def row(anonymous, student, other_teacher, teacher, admin) -> dict[str, Any]:
    return dict(zip(ROLES, (anonymous, student, other_teacher, teacher, admin), strict=True))


def everyone(outcome) -> dict[str, Any]:
    return row(outcome, outcome, outcome, outcome, outcome)


STUDENT_ONLY_POST = row(LOGIN, NOT_ALLOWED, FORBIDDEN, FORBIDDEN, FORBIDDEN)
CLASS_PAGE = row(LOGIN, FORBIDDEN, NOT_FOUND, OK, OK)
CLASS_POST = row(LOGIN, FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED)
STAFF_PAGE = row(LOGIN, FORBIDDEN, OK, OK, OK)
ADMIN_PAGE = row(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK)
DJANGO_ADMIN = row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, OK)

EXPECTED: dict[str, dict[str, Any]] = {
    "home": row(LOGIN, OK, OK, OK, OK),
    "login": everyone(OK),
    "logout": everyone(NOT_ALLOWED),  # POST only
    "healthz": everyone(OK),
    # The student's side.
    "dialogues:start": everyone(NOT_ALLOWED),  # POST only, checked before the role
    # Another student's session is "not found"; staff review sessions on the review pages.
    "dialogues:chat": row(LOGIN, OK, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "classes:join": STUDENT_ONLY_POST,
    # Accounts: sign-up with a class code (signed-in users go home), password change and reset.
    "signup": row(OK, REDIRECT, REDIRECT, REDIRECT, REDIRECT),
    "password_change": row(LOGIN, OK, OK, OK, OK),
    "password_change_done": row(LOGIN, OK, OK, OK, OK),
    "password_reset": everyone(OK),
    "password_reset_done": everyone(OK),
    "password_reset_confirm": everyone(OK),
    "password_reset_complete": everyone(OK),
    "classes:roster_import": CLASS_PAGE,
    # Teachers' own problems (the world's problem is a bank problem: editable by admins only).
    "problems:list": STAFF_PAGE,
    "problems:create": STAFF_PAGE,
    "problems:import": STAFF_PAGE,
    "problems:detail": STAFF_PAGE,
    "problems:edit": row(LOGIN, FORBIDDEN, NOT_FOUND, NOT_FOUND, OK),
    "problems:check": CLASS_POST,
    "problems:archive": CLASS_POST,
    "problems:restore": CLASS_POST,
    "classes:start_problem": STUDENT_ONLY_POST,
    # Classes: a teacher's own (another teacher's class is "not found"), every class for admins.
    "classes:list": STAFF_PAGE,
    "classes:create": STAFF_PAGE,
    "classes:detail": CLASS_PAGE,
    "classes:edit": CLASS_PAGE,
    "classes:export": CLASS_PAGE,
    "classes:assignment_create": CLASS_PAGE,
    "classes:assignment_edit": CLASS_PAGE,
    "classes:regenerate_code": CLASS_POST,
    "classes:add_student": CLASS_POST,
    "classes:remove_student": CLASS_POST,
    "classes:assignment_delete": CLASS_POST,
    # Reviews: the teacher's classes' sessions and flags (another teacher sees an empty list).
    "reviews:sessions": STAFF_PAGE,
    "reviews:flags": STAFF_PAGE,
    "reviews:session": CLASS_PAGE,
    "reviews:ratings": CLASS_PAGE,
    "reviews:rate": everyone(NOT_ALLOWED),  # POST only, checked before the role
    "reviews:gave_away": everyone(NOT_ALLOWED),
    "reviews:resolve": everyone(NOT_ALLOWED),
    "dashboards:class": CLASS_PAGE,
    "dashboards:class_summary": CLASS_PAGE,
    "dashboards:class_mastery": CLASS_PAGE,
    # Retraining: platform admins only.
    "retraining:jobs": ADMIN_PAGE,
    "retraining:job_new": ADMIN_PAGE,
    "retraining:job_detail": ADMIN_PAGE,
    "retraining:job_progress": ADMIN_PAGE,
    "retraining:versions": ADMIN_PAGE,
    "retraining:versions_json": ADMIN_PAGE,
    "retraining:compare": ADMIN_PAGE,
    "retraining:version_detail": ADMIN_PAGE,
    "retraining:eval_progress": ADMIN_PAGE,
    "retraining:job_cancel": everyone(NOT_ALLOWED),  # POST only, checked before the role
    "retraining:job_resume": everyone(NOT_ALLOWED),
    "retraining:version_evaluate": everyone(NOT_ALLOWED),
    "retraining:version_promote": everyone(NOT_ALLOWED),
    "retraining:rollback": everyone(NOT_ALLOWED),
    # The Django admin: staff only (the admin role); others go to its login page.
    "admin:index": DJANGO_ADMIN,
    "admin:app_list": DJANGO_ADMIN,
    "admin:login": row(OK, OK, OK, OK, REDIRECT),
    "admin:logout": row(REDIRECT, REDIRECT, REDIRECT, REDIRECT, NOT_ALLOWED),
    "admin:password_change": DJANGO_ADMIN,
    "admin:password_change_done": DJANGO_ADMIN,
    "admin:jsi18n": DJANGO_ADMIN,
    "admin:autocomplete": row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, FORBIDDEN),
    "admin:view_on_site": row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, NOT_FOUND),
    "admin:auth_user_password_change": DJANGO_ADMIN,
    "admin/(?P<url>.*)$": row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, NOT_FOUND),
    # django-axes' records are written by logins only.
    "admin:axes_accessattempt_add": row(
        ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, FORBIDDEN
    ),
    "admin:axes_accesslog_add": row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, FORBIDDEN),
    "admin:axes_accessfailurelog_add": row(
        ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, FORBIDDEN
    ),
    # Problem calibrations are measured (manage.py calibrate_problems), never typed in.
    "admin:problems_problemcalibration_add": row(
        ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, FORBIDDEN
    ),
    "admin:problems_problemcalibration_delete": row(
        ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, FORBIDDEN
    ),
}
# Every model the Django admin lists has the same five pages, and an old-style change URL
# that redirects to the change page.
ADMIN_MODEL_PAGE = re.compile(r"^admin:\w+_(changelist|add|change|delete|history)$")
ADMIN_OLD_CHANGE_URL = re.compile(r"^admin/\w+/\w+/<path:object_id>/$")


def expected_for(key: str) -> dict[str, Any] | None:
    if key in EXPECTED:
        return EXPECTED[key]
    if ADMIN_MODEL_PAGE.match(key):
        return DJANGO_ADMIN
    if ADMIN_OLD_CHANGE_URL.match(key):
        return row(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, REDIRECT)
    return None


def outcome(response) -> Any:
    if response.status_code in (301, 302):
        location = response["Location"]
        if location.startswith("/admin/login/"):
            return ADMIN_LOGIN
        if location.startswith("/accounts/login/"):
            return LOGIN
        return REDIRECT
    return response.status_code


@pytest.fixture
def world(make_user, problem, settings):
    # Nothing here may reach a model server.
    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"
    return build_world(make_user, problem)


def test_every_url_pattern_is_in_the_table(world):
    urls = sweep_urls(world)
    missing = [u.key for u in urls if expected_for(u.key) is None]
    assert not missing, f"URL patterns with no expectation in EXPECTED: {missing}"
    keys = {u.key for u in urls}
    stale = sorted(set(EXPECTED) - keys)
    assert not stale, f"EXPECTED names patterns that no longer exist: {stale}"


def test_every_role_gets_what_the_table_says_on_every_url(world):
    urls = sweep_urls(world)
    wrong = []
    for role in ROLES:
        client = client_for(world, role)
        for sweep_url in urls:
            expected = expected_for(sweep_url.key)
            if expected is None:
                continue  # reported by the test above
            response = client.get(sweep_url.url)
            got = outcome(response)
            if got != expected[role]:
                wrong.append(
                    f"{role} GET {sweep_url.url} ({sweep_url.key}): {got},"
                    f" expected {expected[role]}"
                )
    assert not wrong, "\n".join(wrong)
