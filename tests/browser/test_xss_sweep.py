"""Markup in every field a user (or a model, or a training job) controls never runs, on any page
that shows it, for any role that sees it, in headless Chromium.

Every such field holds a script tag, an image with an ``onerror`` handler, an SVG with
``onload``, a ``javascript:`` link (and, where text goes through the chat's Markdown + KaTeX +
DOMPurify renderer, their Markdown and LaTeX forms). Each page is then visited and checked:
``window.__xss`` is unset, no dialog opened, no ``javascript:`` link and no injected event
handler is in the DOM, and the field's marker text is on the page (so the field was shown).
One live server serves the whole module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from tests.support import scripted_model_server
from tests.support.live_server import LiveASGIServer
from tests.support.retraining import GOOD, finished_eval, make_version
from tests.support.scripted_model_server import ScriptedModelServer
from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues.models import Message, TutoringSession
from tutor.problems.models import Problem
from tutor.retraining import services as retraining_services
from tutor.retraining.models import EvalRun, Promotion, TrainingJob
from tutor.reviews.models import Flag, TurnRating

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = "<script>window.__xss = 1</script>"
IMG = '<img src=x onerror="window.__xss = 1">'
SVG = "<svg onload=alert(1)>"
LINK = '<a href="javascript:window.__xss = 1">click</a>'
HTML = SCRIPT + IMG + SVG + LINK  # 139 characters
NAME = SCRIPT + IMG + LINK  # 118, for names of 150 characters with their marker
SHORT = IMG + LINK  # 85, for fields of 120 characters
# What the chat's renderer (Markdown, KaTeX, DOMPurify) is fed on top of raw HTML.
MARKDOWN = (
    " [a link](javascript:window.__xss=1) <javascript:alert(1)>"
    ' ![pic](x"onerror="window.__xss=1) $\\href{javascript:window.__xss=1}{x}$'
    ' <details open ontoggle="window.__xss=1">d</details>'
    ' <iframe srcdoc="<script>parent.__xss=1</script>"></iframe>'
)


def hostile(marker: str, payload: str = HTML) -> str:
    """A field's text: its marker (checked on the page) and the payload."""
    return f"{marker} {payload}"


PASSWORD = "correct horse"

# After a page is ready: scripts ran, images failed, and what was injected is in the DOM.
INSPECT = """() => {
  const links = [...document.querySelectorAll('a[href], area[href]')]
    .filter((a) => a.protocol === 'javascript:').map((a) => a.outerHTML);
  const handlers = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (!attr.name.startsWith('on')) continue;
      // The templates' own confirmation prompts (a username in them is escaped for JS).
      if (attr.name === 'onsubmit' && attr.value.startsWith('return confirm(')) continue;
      handlers.push(el.outerHTML.slice(0, 120));
    }
  }
  const frames = [...document.querySelectorAll('iframe, object, embed')].map((f) => f.outerHTML);
  return { xss: window.__xss, links, handlers, frames, text: document.documentElement.textContent };
}"""


@pytest.fixture(scope="module")
def xss_live_server(django_db_setup):
    """One ASGI server for the module; each test's data is visible to it (same database)."""
    from tutor.asgi import application

    server = LiveASGIServer(application)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(xss_live_server, transactional_db, settings):
    from django.core.cache import cache

    # No page here talks to a model server unless a test starts one.
    settings.TUTOR_MODEL_BASE_URL = "http://127.0.0.1:9/v1"
    cache.clear()
    yield xss_live_server
    cache.clear()


def build_world(make_user) -> dict:
    """Every user-controlled field, filled with markup."""
    student = make_user("s" + HTML, password=PASSWORD)
    student.first_name = hostile("STUDENT-FIRST", NAME)
    student.last_name = hostile("STUDENT-LAST", NAME)
    student.save()
    teacher = make_user("t" + HTML, role="teacher", password=PASSWORD)
    teacher.first_name = hostile("TEACHER-FIRST", NAME)
    teacher.last_name = hostile("TEACHER-LAST", NAME)
    teacher.save()
    admin = make_user("a" + HTML, role="admin", password=PASSWORD)
    admin.first_name = hostile("ADMIN-FIRST", NAME)
    admin.is_staff = admin.is_superuser = True
    admin.save()

    problem = Problem.objects.create(
        title=hostile("PROBLEM-TITLE"),
        text=hostile("PROBLEM-TEXT", HTML + MARKDOWN) + " Solve $3x + 7 = 25$.",
        final_answer="6",
        solution=hostile("PROBLEM-SOLUTION", HTML + MARKDOWN),
        skills=[hostile("SKILL", SHORT), "fractions"],
    )
    classroom = Classroom.objects.create(
        name=hostile("CLASS", SHORT),
        teacher=teacher,
        pedagogy_instructions=hostile("CLASS-INSTRUCTIONS") + "\n" + MARKDOWN,
    )
    Enrollment.objects.create(classroom=classroom, student=student)
    assignment = Assignment.objects.create(
        classroom=classroom,
        title=hostile("ASSIGNMENT"),
        due_at=timezone.now() + timezone.timedelta(days=2),
        pedagogy_instructions=hostile("ASSIGNMENT-INSTRUCTIONS"),
    )
    assignment.problems.add(problem)
    session = TutoringSession.objects.create(
        student=student, problem=problem, classroom=classroom, assignment=assignment
    )
    Message.objects.create(
        session=session, role="student", text=hostile("STUDENT-SAYS", HTML + MARKDOWN)
    )
    tutor_message = Message.objects.create(
        session=session,
        role="tutor",
        text=hostile("TUTOR-SAYS", HTML + MARKDOWN) + " $$\\frac{25-7}{3}$$",
        thinking=hostile("TUTOR-THINKS", HTML + MARKDOWN),
        error=hostile("MESSAGE-ERROR"),
    )
    Flag.objects.create(
        session=session,
        message=tutor_message,
        kind=Flag.Kind.UNSAFE_CONTENT,
        severity=Flag.Severity.HIGH,
        category=IMG,
        detail=hostile("FLAG-DETAIL"),
    )
    TurnRating.objects.create(
        message=tutor_message, rater=teacher, helpful=2, comment=hostile("RATING-COMMENT")
    )

    base = retraining_services.base_version()
    metric_key = "kl" + IMG
    job = TrainingJob.objects.create(
        created_by=admin,
        base_version=base,
        config={"lambda_": 0.5, "steps": 2, "note" + IMG: hostile("JOB-CONFIG")},
        total_steps=2,
        step=2,
        status=TrainingJob.Status.SUCCEEDED,
        finished_at=timezone.now(),
        metrics={"reward_mean": 0.4, metric_key: 0.1},
        history=[
            {"step": 1, "reward_mean": 0.2, "solve_rate": 0.5, "leak_rate": 0.1, metric_key: 0.2},
            {"step": 2, "reward_mean": 0.4, "solve_rate": 0.6, "leak_rate": 0.1, metric_key: 0.1},
        ],
        log="\n".join(hostile(f"JOB-LOG-{i}") for i in range(3)) + "\n",
        error=hostile("JOB-ERROR"),
        dataset_stats={"problems": 3, "source" + IMG: hostile("JOB-DATASET")},
    )
    job.classrooms.add(classroom)
    version = make_version(
        "v" + HTML,
        training_job=job,
        parent=base,
        notes=hostile("VERSION-NOTES"),
        metrics={"reward_mean_last": 0.4, "solve_rate" + IMG: 0.5},
    )
    job.result_version = version
    job.save(update_fields=["result_version"])
    run = finished_eval(version, GOOD)
    EvalRun.objects.filter(pk=run.pk).update(
        headline={**run.headline, "leak" + IMG: {"value": 0.1, "ci_low": 0, "ci_high": 0.2}},
        gate={"passed": False, "reasons": [hostile("GATE-REASON")]},
        current_task=hostile("EVAL-TASK", IMG),
    )
    EvalRun.objects.create(
        version=version, status=EvalRun.Status.FAILED, error=hostile("EVAL-ERROR"), total=1
    )
    Promotion.objects.create(version=version, classroom=classroom, promoted_by=admin)
    return {
        "student": student,
        "teacher": teacher,
        "admin": admin,
        "classroom": classroom,
        "assignment": assignment,
        "session": session,
        "job": job,
        "version": version,
        "base": base,
        "problem": problem,
    }


@dataclass
class Visit:
    path: str
    markers: list[str]  # texts the page must show
    ready: str | None = None  # a selector that appears once the page has rendered
    problems: list[str] = field(default_factory=list)


def sweep(browser, server, session_cookie, user, visits: list[Visit]) -> list[str]:
    """Visit each page as ``user``; every way markup could have run is reported."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session_cookie(user), "url": server.url}])
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    found = []
    try:
        for visit in visits:
            response = page.goto(server.url + visit.path)
            assert response is not None and response.status == 200, (visit.path, response)
            if visit.ready:
                page.wait_for_selector(visit.ready, state="attached", timeout=15_000)
            page.wait_for_timeout(300)  # an image's error event has fired by now
            found += inspect(page, visit)
        found += [f"{user.first_name[:13]}: dialog opened: {d}" for d in dialogs]
        found += [f"{user.first_name[:13]}: JavaScript error: {e}" for e in errors]
    finally:
        context.close()
    return found


def inspect(page, visit: Visit) -> list[str]:
    state = page.evaluate(INSPECT)
    found = []
    if state["xss"] is not None:
        found.append(f"{visit.path}: window.__xss = {state['xss']}")
    found += [f"{visit.path}: javascript: link {link}" for link in state["links"]]
    found += [f"{visit.path}: event handler {html}" for html in state["handlers"]]
    found += [f"{visit.path}: frame {html}" for html in state["frames"]]
    found += [
        f"{visit.path}: {marker} not shown"
        for marker in visit.markers
        if marker not in state["text"]
    ]
    return found


def test_student_pages_and_a_live_chat_never_run_markup(
    browser, server, session_cookie, make_user, monkeypatch, settings
):
    world = build_world(make_user)
    student, session = world["student"], world["session"]
    chat = reverse("dialogues:chat", args=[session.pk])
    # The tutor's live reply streams the payload in pieces that split tags and attributes.
    reply = hostile("TUTOR-LIVE", HTML + MARKDOWN)
    chunks = [reply[i : i + 7] for i in range(0, len(reply), 7)]
    monkeypatch.setattr(scripted_model_server, "NORMAL_CHUNKS", chunks)

    with ScriptedModelServer() as model:
        settings.TUTOR_MODEL_BASE_URL = model.base_url
        problems = sweep(
            browser,
            server,
            session_cookie,
            student,
            [
                Visit(
                    "/",
                    ["STUDENT-FIRST", "PROBLEM-TITLE", "ASSIGNMENT", "CLASS", "SKILL"],
                ),
                Visit(
                    chat,
                    ["PROBLEM-TITLE", "PROBLEM-TEXT", "STUDENT-SAYS", "TUTOR-SAYS"],
                    ready='#connection-status[data-state="connected"]',
                ),
            ],
        )
        problems += live_chat(browser, server, session_cookie, student, chat)
    assert not problems, "\n".join(problems)


def live_chat(browser, server, session_cookie, student, chat: str) -> list[str]:
    """The student sends markup; the tutor streams markup back."""
    context = browser.new_context()
    context.add_cookies(
        [{"name": "sessionid", "value": session_cookie(student), "url": server.url}]
    )
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(server.url + chat)
        expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
        page.fill("#message-input", hostile("STUDENT-LIVE", HTML + MARKDOWN))
        page.keyboard.press("Enter")
        expect(page.locator(".message--tutor[data-message-id]").last).to_contain_text(
            "TUTOR-LIVE", timeout=20_000
        )
        expect(page.locator('.message--tutor[data-streaming="true"]')).to_have_count(0)
        page.wait_for_timeout(300)
        found = inspect(page, Visit(chat, ["STUDENT-LIVE", "TUTOR-LIVE"]))
        # Reloaded, the stored transcript renders the same way.
        page.reload()
        expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
        expect(page.locator(".message--tutor[data-message-id]").last).to_contain_text("TUTOR-LIVE")
        page.wait_for_timeout(300)
        found += inspect(page, Visit(chat + " (reloaded)", ["STUDENT-LIVE", "TUTOR-LIVE"]))
        found += [f"live chat: dialog opened: {d}" for d in dialogs]
    finally:
        context.close()
    return found


def raise_flag_from_a_worker(session):
    """A high-severity flag arrives live on the teacher's pages (from another thread, as the
    Celery worker would raise it; the test thread runs Playwright's event loop)."""
    from tutor.reviews import services

    def work():
        try:
            message = Message.objects.create(
                session=session, role="student", text=hostile("LIVE-FLAG-MESSAGE")
            )
            services.raise_flag(
                session,
                Flag.Kind.UNSAFE_CONTENT,
                Flag.Severity.HIGH,
                message=message,
                category=IMG,
                detail=hostile("LIVE-FLAG-DETAIL"),
            )
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)


def test_teacher_pages_never_run_markup(browser, server, session_cookie, make_user):
    world = build_world(make_user)
    classroom, assignment, session = world["classroom"], world["assignment"], world["session"]
    names = ["STUDENT-FIRST", "STUDENT-LAST"]
    problems = sweep(
        browser,
        server,
        session_cookie,
        world["teacher"],
        [
            Visit("/", ["TEACHER-FIRST"]),
            Visit(reverse("classes:list"), ["CLASS"]),
            Visit(reverse("classes:detail", args=[classroom.pk]), ["CLASS", "ASSIGNMENT", *names]),
            Visit(reverse("classes:edit", args=[classroom.pk]), ["CLASS-INSTRUCTIONS"]),
            Visit(
                reverse("classes:assignment_edit", args=[classroom.pk, assignment.pk]),
                ["ASSIGNMENT", "ASSIGNMENT-INSTRUCTIONS", "PROBLEM-TITLE", "SKILL"],
            ),
            Visit(
                reverse("dashboards:class", args=[classroom.pk]),
                ["CLASS", "STUDENT-FIRST", "SKILL"],
                ready='#dashboard[data-state="ready"]',
            ),
            Visit(reverse("reviews:sessions"), ["PROBLEM-TITLE", *names]),
            Visit(
                reverse("reviews:session", args=[session.pk]),
                [
                    "PROBLEM-TITLE",
                    "PROBLEM-TEXT",
                    "STUDENT-SAYS",
                    "TUTOR-SAYS",
                    "TUTOR-THINKS",
                    "FLAG-DETAIL",
                    *names,
                ],
            ),
            Visit(reverse("reviews:flags") + "?status=all", ["FLAG-DETAIL", "PROBLEM-TITLE"]),
        ],
    )
    problems += live_flag(browser, server, session_cookie, world)
    assert not problems, "\n".join(problems)


def live_flag(browser, server, session_cookie, world) -> list[str]:
    """A flag pushed over the teacher socket shows as a toast, as text."""
    context = browser.new_context()
    context.add_cookies(
        [{"name": "sessionid", "value": session_cookie(world["teacher"]), "url": server.url}]
    )
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        path = reverse("reviews:flags")
        page.goto(server.url + path)
        expect(page.locator("body")).to_have_attribute("data-flag-socket", "connected")
        raise_flag_from_a_worker(world["session"])
        toast = page.locator(".toast").first
        expect(toast).to_contain_text("PROBLEM-TITLE", timeout=10_000)
        expect(toast).to_contain_text("STUDENT-FIRST")
        page.wait_for_timeout(300)
        found = inspect(page, Visit(path + " (live flag)", ["PROBLEM-TITLE"]))
        found += [f"live flag: dialog opened: {d}" for d in dialogs]
    finally:
        context.close()
    return found


def test_admin_pages_never_run_markup(browser, server, session_cookie, make_user):
    world = build_world(make_user)
    job, version, base = world["job"], world["version"], world["base"]
    log = ["JOB-LOG-0", "JOB-LOG-2"]
    problems = sweep(
        browser,
        server,
        session_cookie,
        world["admin"],
        [
            Visit("/", ["ADMIN-FIRST"]),
            Visit(reverse("retraining:jobs"), []),
            Visit(reverse("retraining:job_new"), ["CLASS"]),
            Visit(
                reverse("retraining:job_detail", args=[job.pk]),
                ["JOB-CONFIG", "JOB-ERROR", "CLASS", *log],
                ready="#job-status",
            ),
            Visit(
                reverse("retraining:versions"),
                ["CLASS"],
                ready='#versions[data-state="ready"]',
            ),
            Visit(
                reverse("retraining:version_detail", args=[version.pk]),
                ["GATE-REASON", "EVAL-ERROR", "EVAL-TASK", "CLASS"],
            ),
            Visit(reverse("retraining:compare") + f"?a={base.pk}&b={version.pk}", ["JOB-CONFIG"]),
            # Admins see every class's pages too.
            Visit(reverse("reviews:flags") + "?status=all", ["FLAG-DETAIL"]),
            Visit(
                reverse("reviews:session", args=[world["session"].pk]),
                ["TUTOR-SAYS", "TUTOR-THINKS"],
            ),
            Visit(
                reverse("dashboards:class", args=[world["classroom"].pk]),
                ["STUDENT-FIRST"],
                ready='#dashboard[data-state="ready"]',
            ),
            Visit(reverse("admin:accounts_user_changelist"), ["STUDENT-FIRST"]),
            Visit(reverse("admin:classes_classroom_changelist"), ["CLASS"]),
            Visit(
                reverse("admin:retraining_modelversion_change", args=[version.pk]),
                ["VERSION-NOTES"],
            ),
            Visit(
                reverse("admin:problems_problem_change", args=[world["problem"].pk]),
                ["PROBLEM-SOLUTION", "SKILL"],
            ),
        ],
    )
    assert not problems, "\n".join(problems)
