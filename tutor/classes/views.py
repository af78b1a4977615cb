"""Teacher pages for classes and assignments, and the student side: joining and starting.

Teachers reach only their own classes (another teacher's class is a 404, so ids cannot be
probed); platform admins reach every class. Students reach only what their enrolment allows.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from tutor import limits
from tutor.accounts.decorators import role_required
from tutor.accounts.models import Role
from tutor.dialogues import services as dialogue_services
from tutor.problems.models import Problem

from . import export, services
from .forms import AddStudentForm, AssignmentForm, ClassroomForm, JoinClassForm
from .models import Assignment, Enrollment

teacher_required = role_required(Role.TEACHER, Role.ADMIN)
student_required = role_required(Role.STUDENT)


# ---- classes ----------------------------------------------------------------------------------


@teacher_required
def class_list(request: HttpRequest) -> HttpResponse:
    classrooms = services.classrooms_for(request.user).annotate(
        student_count=Count("enrollments", distinct=True),
        assignment_count=Count("assignments", distinct=True),
    )
    return render(request, "classes/class_list.html", {"classrooms": classrooms})


@teacher_required
@require_http_methods(["GET", "POST"])
def class_create(request: HttpRequest) -> HttpResponse:
    form = ClassroomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        classroom = form.save(commit=False)
        classroom.teacher = request.user
        classroom.save()
        messages.success(request, f"Class “{classroom.name}” created.")
        return redirect("classes:detail", class_id=classroom.pk)
    return render(request, "classes/class_form.html", {"form": form, "classroom": None})


@teacher_required
@require_http_methods(["GET", "POST"])
def class_edit(request: HttpRequest, class_id: int) -> HttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    form = ClassroomForm(request.POST or None, instance=classroom)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Class saved.")
        return redirect("classes:detail", class_id=classroom.pk)
    return render(request, "classes/class_form.html", {"form": form, "classroom": classroom})


@teacher_required
def class_detail(request: HttpRequest, class_id: int) -> HttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    enrollments = (
        Enrollment.objects.filter(classroom=classroom)
        .select_related("student")
        .order_by("student__last_name", "student__first_name", "student__username")
    )
    assignments = classroom.assignments.annotate(problem_count=Count("problems"))
    return render(
        request,
        "classes/class_detail.html",
        {
            "classroom": classroom,
            "enrollments": enrollments,
            "assignments": assignments,
            "add_form": AddStudentForm(),
        },
    )


@teacher_required
@require_POST
def regenerate_code(request: HttpRequest, class_id: int) -> HttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    code = services.regenerate_join_code(classroom)
    messages.success(request, f"New join code: {code}. The old code no longer works.")
    return redirect("classes:detail", class_id=classroom.pk)


@teacher_required
@require_POST
def add_student(request: HttpRequest, class_id: int) -> HttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    form = AddStudentForm(request.POST)
    if form.is_valid():
        _, created = Enrollment.objects.get_or_create(classroom=classroom, student=form.student)
        if created:
            messages.success(request, f"Added {form.student.username} to the class.")
        else:
            messages.info(request, f"{form.student.username} is already in the class.")
    else:
        for error in form.errors.get("username", []):
            messages.error(request, error)
    return redirect("classes:detail", class_id=classroom.pk)


@teacher_required
@require_POST
def remove_student(request: HttpRequest, class_id: int, student_id: int) -> HttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    enrollment = get_object_or_404(
        Enrollment.objects.select_related("student"), classroom=classroom, student_id=student_id
    )
    enrollment.delete()
    messages.success(request, f"Removed {enrollment.student.username} from the class.")
    return redirect("classes:detail", class_id=classroom.pk)


@teacher_required
def export_jsonl(request: HttpRequest, class_id: int) -> StreamingHttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    # Under ASGI an async iterator streams without holding the whole export in memory; the
    # sync iterator serves WSGI servers and the test client.
    if isinstance(request, ASGIRequest):
        content = export.aexport_lines(classroom)
    else:
        content = export.export_lines(classroom)
    response = StreamingHttpResponse(content, content_type="application/jsonl; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="class-{classroom.pk}-sessions.jsonl"'
    response["Cache-Control"] = "no-store"
    return response


# ---- assignments ------------------------------------------------------------------------------


def _builder_filters(request: HttpRequest) -> tuple[str, int | None]:
    skill = request.GET.get("skill", "").strip()
    try:
        difficulty = int(request.GET.get("difficulty", ""))
    except ValueError:
        difficulty = None
    if difficulty is not None and not 1 <= difficulty <= 5:
        difficulty = None
    return skill, difficulty


def _assignment_builder(request: HttpRequest, classroom, assignment: Assignment | None):
    # The bank, shared problems and the class teacher's own: never another teacher's unshared.
    usable = Problem.objects.assignable(classroom.teacher, request.user).select_related("owner")
    form = AssignmentForm(request.POST or None, instance=assignment, usable=usable)
    if request.method == "POST" and form.is_valid():
        assignment = form.save(commit=False)
        assignment.classroom = classroom
        assignment.save()
        form.save_m2m()
        messages.success(request, f"Assignment “{assignment.title}” saved.")
        return redirect("classes:detail", class_id=classroom.pk)

    skill, difficulty = _builder_filters(request)
    bank = services.filter_problems(usable, skill=skill, difficulty=difficulty).order_by(
        "difficulty", "title", "id"
    )
    if form.is_bound:
        selected = {
            pk
            for pk in request.POST.getlist("problems")
            if pk.isascii() and pk.isdigit() and len(pk) <= 18
        }
    elif assignment is not None:
        selected = {str(pk) for pk in assignment.problems.values_list("pk", flat=True)}
    else:
        selected = set()
    # Problems already picked stay visible (and checked) whatever the filters, so filtering
    # never silently drops them from the assignment.
    shown = list(bank)
    shown_ids = {str(p.pk) for p in shown}
    # Only among the problems this form may use: a posted id of another teacher's unshared
    # problem must not show its title.
    hidden_selected = list(
        form.fields["problems"]
        .queryset.filter(pk__in=selected - shown_ids)
        .order_by("difficulty", "id")
    )
    return render(
        request,
        "classes/assignment_form.html",
        {
            "classroom": classroom,
            "assignment": assignment,
            "form": form,
            "problems": hidden_selected + shown,
            "selected": selected,
            "skills": services.all_skills(usable),
            "skill": skill,
            "difficulty": difficulty,
            "difficulties": range(1, 6),
            "filtered": bool(skill or difficulty),
            "match_count": len(shown),
        },
    )


@teacher_required
@require_http_methods(["GET", "POST"])
def assignment_create(request: HttpRequest, class_id: int) -> HttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    return _assignment_builder(request, classroom, None)


@teacher_required
@require_http_methods(["GET", "POST"])
def assignment_edit(request: HttpRequest, class_id: int, assignment_id: int) -> HttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    assignment = get_object_or_404(Assignment, pk=assignment_id, classroom=classroom)
    return _assignment_builder(request, classroom, assignment)


@teacher_required
@require_POST
def assignment_delete(request: HttpRequest, class_id: int, assignment_id: int) -> HttpResponse:
    classroom = services.get_classroom_for(request.user, class_id)
    assignment = get_object_or_404(Assignment, pk=assignment_id, classroom=classroom)
    title = assignment.title
    # Sessions already worked keep their dialogue; their assignment link becomes empty.
    assignment.delete()
    messages.success(request, f"Assignment “{title}” deleted.")
    return redirect("classes:detail", class_id=classroom.pk)


# ---- students ---------------------------------------------------------------------------------


@student_required
@require_POST
def join_class(request: HttpRequest) -> HttpResponse:
    # Every try counts, right or wrong, so that codes cannot be guessed by trying them all.
    wait = limits.take(
        "join-code", request.user.pk, limits.Rate(settings.TUTOR_RATE_JOIN_CODES_PER_HOUR, 3600)
    )
    if wait:
        messages.error(
            request,
            f"Too many join codes tried. Please wait {round(wait / 60) or 1} minutes, "
            "or ask your teacher to add you to the class.",
        )
        return redirect(reverse("home") + "#join-class")
    form = JoinClassForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("code", ["Enter the code your teacher gave you."]):
            messages.error(request, error)
        return redirect(reverse("home") + "#join-class")
    _, created = Enrollment.objects.get_or_create(classroom=form.classroom, student=request.user)
    if created:
        messages.success(request, f"You joined “{form.classroom.name}”.")
    else:
        messages.info(request, f"You are already in “{form.classroom.name}”.")
    return redirect("home")


@student_required
@require_POST
def start_assignment_problem(
    request: HttpRequest, assignment_id: int, problem_id: int
) -> HttpResponse:
    assignment = (
        Assignment.objects.filter(
            pk=assignment_id,
            classroom__enrollments__student=request.user,
            classroom__is_archived=False,
        )
        .select_related("classroom")
        .first()
    )
    if assignment is None:
        raise Http404("No such assignment.")
    problem = get_object_or_404(assignment.problems.all(), pk=problem_id)
    session = dialogue_services.open_session_for(request.user, problem, assignment=assignment)
    return redirect("dialogues:chat", session_id=session.pk)
