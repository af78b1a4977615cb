from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role
from tutor.classes.models import Classroom
from tutor.classes.services import student_assignments
from tutor.problems.models import Problem

from . import listing, services
from .models import TutoringSession


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.user.role != Role.STUDENT:
        return render(request, "home_staff.html")
    # The student's own sessions only, grouped and paged (listing.py); the problem bank paged too.
    sessions = listing.session_groups(request.user, request.GET.get("by"), request.GET.get("page"))
    problems, problems_notice = listing.paged(
        # Bank and shared problems only: a teacher's own problem reaches students through
        # that teacher's assignments.
        Problem.objects.free_practice().order_by("difficulty", "title", "pk"),
        request.GET.get("problems_page"),
        listing.PROBLEMS_PER_PAGE,
    )
    return render(
        request,
        "dialogues/student_home.html",
        {
            "sessions": sessions,
            "groupings": listing.GROUPINGS,
            "problems": problems,
            "problems_notice": problems_notice,
            "assignments": student_assignments(request.user),
            "classrooms": Classroom.objects.filter(
                enrollments__student=request.user, is_archived=False
            ).select_related("teacher"),
        },
    )


@require_POST
@role_required(Role.STUDENT)
def start_session(request: HttpRequest, problem_id: int) -> HttpResponse:
    problem = get_object_or_404(Problem.objects.free_practice(), pk=problem_id)
    session = services.open_session_for(request.user, problem)
    return redirect("dialogues:chat", session_id=session.pk)


@role_required(Role.STUDENT)
def chat(request: HttpRequest, session_id: int) -> HttpResponse:
    session = get_object_or_404(TutoringSession.objects.select_related("problem"), pk=session_id)
    if session.student_id != request.user.pk:
        # Not "forbidden": another student's session ids should not be discoverable.
        raise Http404("No such session.")
    return render(
        request,
        "dialogues/chat.html",
        {"session": session, "max_chars": settings.TUTOR_MAX_MESSAGE_CHARS},
    )
