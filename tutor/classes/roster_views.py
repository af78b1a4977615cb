"""The roster import page: a teacher uploads a CSV into one of their classes."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods

from tutor import limits
from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role

from . import services
from .roster_import import RosterImportForm, import_roster

IMPORTS_PER_HOUR = 30


@role_required(Role.TEACHER, Role.ADMIN)
@require_http_methods(["GET", "POST"])
@sensitive_variables("report")
def roster_import(request: HttpRequest, class_id: int) -> HttpResponse:
    """The form, and after an upload the report: created accounts with their temporary
    passwords (shown here once and nowhere else, so the page is never cached), enrolled
    students and rejected rows."""
    classroom = services.get_classroom_for(request.user, class_id)
    if request.method == "POST":
        form = RosterImportForm(request.POST, request.FILES)
    else:
        form = RosterImportForm()
    report, page_error, status = None, "", 200
    if request.method == "POST":
        wait = limits.take("roster-import", request.user.pk, limits.Rate(IMPORTS_PER_HOUR, 3600))
        if wait:
            form = RosterImportForm()
            page_error = f"Too many imports. Please wait {max(1, round(wait / 60))} minutes."
            status = 429
        elif form.is_valid():
            report = import_roster(classroom, form.roster)
            form = RosterImportForm()
    response = render(
        request,
        "classes/roster_import.html",
        {
            "classroom": classroom,
            "form": form,
            "report": report,
            "page_error": page_error,
            "max_rows": settings.TUTOR_ROSTER_MAX_ROWS,
            "max_kb": settings.TUTOR_ROSTER_MAX_BYTES // 1024,
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response
