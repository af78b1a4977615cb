"""Queries for classes and assignments, shared by the teacher and student pages."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, models
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from tutor.dialogues.models import TutoringSession
from tutor.problems.models import Problem

from .models import Assignment, Classroom, new_join_code


def classrooms_for(user) -> QuerySet[Classroom]:
    """Classes a teacher may manage: their own; a platform admin sees every class."""
    classrooms = Classroom.objects.select_related("teacher")
    if user.is_platform_admin:
        return classrooms
    return classrooms.filter(teacher=user)


def get_classroom_for(user, class_id: int) -> Classroom:
    """The class if ``user`` may manage it. Another teacher's class is "not found", not
    "forbidden", so class ids cannot be probed."""
    classroom = classrooms_for(user).filter(pk=class_id).first()
    if classroom is None:
        raise Http404("No such class.")
    return classroom


def regenerate_join_code(classroom: Classroom) -> str:
    for _ in range(10):
        code = new_join_code()
        if not Classroom.objects.filter(join_code=code).exists():
            classroom.join_code = code
            classroom.save(update_fields=["join_code"])
            return code
    raise RuntimeError("could not find a free join code")


def all_skills(problems: QuerySet[Problem] | None = None) -> list[str]:
    """Every skill named by ``problems`` (default: the active ones), sorted (one query)."""
    if problems is None:
        problems = Problem.objects.filter(is_active=True)
    skills: set[str] = set()
    for problem_skills in problems.values_list("skills", flat=True):
        skills.update(s for s in problem_skills or [] if isinstance(s, str))
    return sorted(skills, key=str.lower)


def filter_problems(
    problems: QuerySet[Problem], skill: str = "", difficulty: int | None = None
) -> QuerySet[Problem]:
    """Problems with ``skill`` in their skills list and the given difficulty.

    PostgreSQL filters the JSON list in the database (``skills @> '["skill"]'``); SQLite has no
    JSON containment, so there the ids are picked in Python from (id, skills) pairs.
    """
    if difficulty is not None:
        problems = problems.filter(difficulty=difficulty)
    if skill:
        if connection.features.supports_json_field_contains:
            problems = problems.filter(skills__contains=[skill])
        else:
            ids = [
                pk
                for pk, skills in problems.values_list("id", "skills")
                if isinstance(skills, list) and skill in skills
            ]
            problems = problems.filter(pk__in=ids)
    return problems


class ProblemProgress(models.TextChoices):
    """Where a student stands on one problem of an assignment (derived from their sessions)."""

    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    SOLVED = "solved", "Solved"


@dataclass
class AssignmentProblem:
    problem: Problem
    status: ProblemProgress

    @property
    def status_label(self) -> str:
        return str(self.status.label)


@dataclass
class StudentAssignment:
    assignment: Assignment
    problems: list[AssignmentProblem] = field(default_factory=list)

    @property
    def overdue(self) -> bool:
        due = self.assignment.due_at
        return due is not None and due < timezone.now() and not self.done

    @property
    def done(self) -> bool:
        return bool(self.problems) and all(
            p.status == ProblemProgress.SOLVED for p in self.problems
        )

    @property
    def solved_count(self) -> int:
        return sum(p.status == ProblemProgress.SOLVED for p in self.problems)


def student_assignments(student) -> list[StudentAssignment]:
    """The student's assignments from all their classes, each problem with its status.

    Three queries whatever the number of classes, assignments or sessions.
    """
    assignments = list(
        Assignment.objects.filter(
            classroom__enrollments__student=student, classroom__is_archived=False
        )
        .select_related("classroom")
        .prefetch_related("problems")
        .distinct()
        .order_by("due_at", "id")
    )
    status: dict[tuple[int, int], ProblemProgress] = {}
    sessions = TutoringSession.objects.filter(
        student=student, assignment__in=[a.pk for a in assignments]
    ).values_list("assignment_id", "problem_id", "outcome")
    for assignment_id, problem_id, outcome in sessions:
        key = (assignment_id, problem_id)
        if outcome == TutoringSession.Outcome.SOLVED:
            status[key] = ProblemProgress.SOLVED
        else:
            status.setdefault(key, ProblemProgress.IN_PROGRESS)
    result = []
    for assignment in assignments:
        problems = sorted(assignment.problems.all(), key=lambda p: (p.difficulty, p.title, p.pk))
        result.append(
            StudentAssignment(
                assignment=assignment,
                problems=[
                    AssignmentProblem(
                        p, status.get((assignment.pk, p.pk), ProblemProgress.NOT_STARTED)
                    )
                    for p in problems
                ],
            )
        )
    return result
