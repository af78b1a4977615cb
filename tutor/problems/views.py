"""Teachers' own problems: list, read, write, archive, import, and "try an answer".

A teacher reaches their own problems and reads the bank and other teachers' shared ones;
another teacher's unshared problem is "not found", never "forbidden", so ids cannot be probed.
Platform admins reach every problem. Students have no page here (they meet problems through
assignments and free practice only).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pedagogy.grading import is_plain
from tutor import limits
from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role

from .checks import TryResult, TryStatus, try_answer
from .forms import ProblemForm, TryAnswerForm
from .import_files import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS
from .importing import import_problems
from .models import Problem

teacher_required = role_required(Role.TEACHER, Role.ADMIN)

PAGE_SIZE = 50
TABS = ("mine", "shared", "archived")
# Checks (tries and saves) and imports per teacher; each may hold a checking process for the
# grader's time limit, so a flood from one account cannot hold the pool.
DEFAULT_CHECKS_PER_MINUTE = 30
DEFAULT_IMPORTS_PER_HOUR = 20
# A try-an-answer request is a few short fields; an import is one file and a few fields.
MAX_CHECK_BODY_BYTES = 64 * 1024
MAX_IMPORT_BODY_BYTES = MAX_IMPORT_BYTES + 64 * 1024
COSTLY_COOLDOWN = (
    "Your last answer took too long to check, so for a minute only plain numbers and "
    "fractions are checked."
)


def _body_too_large(request: HttpRequest, limit: int) -> bool:
    """Whether the request announces a body over ``limit`` bytes (read before Django parses
    it: a form or file upload is parsed, and spooled to disk, on first access)."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > limit
    except ValueError:
        return True


def _take_check(request: HttpRequest) -> float:
    """Count one answer check for the user: 0 when allowed, else the seconds to wait."""
    per_minute = getattr(
        settings, "TUTOR_RATE_PROBLEM_CHECKS_PER_MINUTE", DEFAULT_CHECKS_PER_MINUTE
    )
    return limits.take("problem-check", request.user.pk, limits.Rate(per_minute, 60))


def _take_import(request: HttpRequest) -> float:
    per_hour = getattr(settings, "TUTOR_RATE_PROBLEM_IMPORTS_PER_HOUR", DEFAULT_IMPORTS_PER_HOUR)
    return limits.take("problem-import", request.user.pk, limits.Rate(per_hour, 3600))


def _wait_message(wait: float, what: str) -> str:
    return f"Too many {what} in a short time. Please wait {round(wait)} seconds and try again."


def _get_problem(queryset, problem_id: int) -> Problem:
    problem = queryset.select_related("owner").filter(pk=problem_id).first()
    if problem is None:
        raise Http404("No such problem.")
    return problem


# ---- lists and pages --------------------------------------------------------------------------


@teacher_required
@require_GET
def problem_list(request: HttpRequest) -> HttpResponse:
    tab = request.GET.get("tab", "mine")
    if tab not in TABS:
        tab = "mine"
    if tab == "shared":
        problems = Problem.objects.active().filter(shared=True).exclude(owner=request.user)
    else:
        problems = Problem.objects.filter(owner=request.user, is_active=tab == "mine")
    problems = problems.select_related("owner").order_by("-updated_at", "-id")
    page = Paginator(problems, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "problems/problem_list.html",
        {"page": page, "problems": page.object_list, "tab": tab, "tabs": TABS},
    )


@teacher_required
@require_GET
def problem_detail(request: HttpRequest, problem_id: int) -> HttpResponse:
    problem = _get_problem(Problem.objects.visible_to(request.user), problem_id)
    editable = Problem.objects.editable_by(request.user).filter(pk=problem.pk).exists()
    return render(
        request, "problems/problem_detail.html", {"problem": problem, "editable": editable}
    )


def _editor(request: HttpRequest, problem: Problem | None) -> HttpResponse:
    form = ProblemForm(request.POST or None, instance=problem)
    status, rate_error = 200, ""
    if request.method == "POST":
        # Saving checks the final answer with the grader, like a try, and counts as one.
        wait = _take_check(request)
        if wait:
            # Not validated (that would run the check): the page shows the text back as sent.
            status, rate_error = 429, _wait_message(wait, "checks") + " Nothing was saved."
        elif form.is_valid():
            saved = form.save(commit=False)
            if problem is None:
                saved.owner = request.user
                saved.source = Problem.Source.CUSTOM
            saved.save()
            messages.success(request, f"Problem “{saved.title}” saved.")
            return redirect("problems:detail", problem_id=saved.pk)
        else:
            status = 400
    return render(
        request,
        "problems/problem_form.html",
        {
            "form": form,
            "problem": problem,
            "rate_error": rate_error,
            "max_answer_chars": settings.TUTOR_MAX_ANSWER_CHARS,
        },
        status=status,
    )


@teacher_required
@require_http_methods(["GET", "POST"])
def problem_create(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@teacher_required
@require_http_methods(["GET", "POST"])
def problem_edit(request: HttpRequest, problem_id: int) -> HttpResponse:
    return _editor(request, _get_problem(Problem.objects.editable_by(request.user), problem_id))


def _set_active(request: HttpRequest, problem_id: int, active: bool) -> HttpResponse:
    problem = _get_problem(Problem.objects.editable_by(request.user), problem_id)
    if problem.is_active != active:
        problem.is_active = active
        problem.save(update_fields=["is_active", "updated_at"])
    if active:
        messages.success(request, f"“{problem.title}” is back in your problems.")
    else:
        messages.success(
            request,
            f"“{problem.title}” archived: it leaves the lists, and sessions and assignments "
            "that already use it keep it.",
        )
    return redirect("problems:detail", problem_id=problem.pk)


@teacher_required
@require_POST
def problem_archive(request: HttpRequest, problem_id: int) -> HttpResponse:
    return _set_active(request, problem_id, False)


@teacher_required
@require_POST
def problem_restore(request: HttpRequest, problem_id: int) -> HttpResponse:
    return _set_active(request, problem_id, True)


# ---- try an answer ----------------------------------------------------------------------------


def _try(request: HttpRequest) -> TryResult | str:
    """The result, or a message saying why the request itself was refused."""
    form = TryAnswerForm(request.POST)
    if not form.is_valid():
        return form.first_error()
    data = form.cleaned_data
    user_id = request.user.pk
    if not is_plain(data["answer"], data["text"]) and limits.held("costly-answer", user_id):
        return TryResult(TryStatus.UNCHECKABLE, COSTLY_COOLDOWN)
    result = try_answer(
        data["answer"], data["final_answer"], data["text"], data["require_simplest_form"]
    )
    if result.costly:
        limits.hold("costly-answer", user_id, settings.TUTOR_COSTLY_ANSWER_COOLDOWN_SECONDS)
    return result


def _refuse_large(limit: int, respond: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Answer ``respond(request)`` to a request whose body is over ``limit`` bytes, before
    Django parses it (the CSRF check reads the form); otherwise run the view with the usual
    CSRF check (``csrf_protect``)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        protected = csrf_protect(view)

        @csrf_exempt
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "POST" and _body_too_large(request, limit):
                return respond(request)
            return protected(request, *args, **kwargs)

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorator


def _check_too_large(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {"status": "invalid", "message": "The answer or the problem text is too long to check."},
        status=413,
    )


@teacher_required
@require_POST
@_refuse_large(MAX_CHECK_BODY_BYTES, _check_too_large)
def problem_check(request: HttpRequest) -> JsonResponse:
    """How a student's answer would be graded: ``{"status", "message"}``, status one of
    correct, incorrect, ambiguous, uncheckable, bad_final_answer (200), invalid (400, 413) or
    rate_limited (429)."""
    wait = _take_check(request)
    if wait:
        return JsonResponse(
            {"status": "rate_limited", "message": _wait_message(wait, "checks")}, status=429
        )
    result = _try(request)
    if isinstance(result, str):
        return JsonResponse({"status": "invalid", "message": result}, status=400)
    return JsonResponse({"status": str(result.status), "message": result.message})


# ---- import -----------------------------------------------------------------------------------


def _import_page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    return render(
        request,
        "problems/problem_import.html",
        {"max_rows": MAX_IMPORT_ROWS, "max_mb": MAX_IMPORT_BYTES // 1_000_000, **context},
        status=status,
    )


def _import_too_large(request: HttpRequest) -> HttpResponse:
    error = f"The file is larger than {MAX_IMPORT_BYTES // 1_000_000} MB. Split it and try again."
    return _import_page(request, {"error": error}, status=413)


@teacher_required
@require_http_methods(["GET", "POST"])
@_refuse_large(MAX_IMPORT_BODY_BYTES, _import_too_large)
def problem_import(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _import_page(request, {})
    upload = request.FILES.get("file")
    keep_valid = request.POST.get("keep_valid") in ("on", "true", "1")
    fmt = request.POST.get("format", "auto")
    if upload is None:
        return _import_page(request, {"error": "Choose a CSV or JSONL file."}, status=400)
    if upload.size is None or upload.size > MAX_IMPORT_BYTES:
        return _import_too_large(request)
    wait = _take_import(request)
    if wait:
        return _import_page(
            request, {"error": _wait_message(wait, "imports"), "keep_valid": keep_valid}, 429
        )
    data = upload.read(MAX_IMPORT_BYTES + 1)
    report = import_problems(
        data, request.user, filename=upload.name or "", fmt=fmt, keep_valid=keep_valid
    )
    if report.imported:
        messages.success(
            request, f"{report.imported} problem{'s' if report.imported != 1 else ''} imported."
        )
    status = 400 if report.error or (report.rejected and not report.imported) else 200
    return _import_page(
        request,
        {
            "report": report,
            "error": report.error,
            "filename": upload.name,
            "keep_valid": keep_valid,
        },
        status=status,
    )
