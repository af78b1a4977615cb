"""The student home's list of their own sessions, grouped and paged so that it stays one
screen and a fixed number of queries however many sessions a student has.

Two groupings: by assignment (each problem of each assignment one row, free practice last)
and by problem (each problem one row, wherever it was practised). A row counts its sessions,
says whether one was solved and links the newest. The database does the grouping; a page
costs a count, the page's rows, and one query each for their problems and assignments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import Count, F, Max, Q

from tutor.classes.models import Assignment
from tutor.problems.models import Problem

from .models import TutoringSession

GROUPINGS = {"assignment": "By assignment", "problem": "By problem"}
ROWS_PER_PAGE = 20
PROBLEMS_PER_PAGE = 25


@dataclass
class SessionGroup:
    """One row: the sessions of one problem (in one assignment, when grouped by assignment)."""

    problem: Problem
    assignment: Assignment | None
    classroom_id: int | None  # opened from a class (its assignment may have been deleted since)
    sessions: int
    solved: bool
    latest_session_id: int
    last_active: datetime

    @property
    def section(self) -> str:
        """The heading the row is listed under when grouped by assignment."""
        if self.assignment is not None:
            return f"assignment-{self.assignment.pk}"
        return f"class-{self.classroom_id}" if self.classroom_id else "practice"


@dataclass
class SessionPage:
    grouping: str
    page: Page
    rows: list[SessionGroup]
    # Why the request's page or grouping was not used ("" when it was).
    notice: str = ""


def paged(items, number: str | None, per_page: int) -> tuple[Page, str]:
    """The page ``number`` of ``items``, and a notice when that page does not exist (then the
    first page, for a number that is not one, or the last)."""
    paginator = Paginator(items, per_page)
    try:
        return paginator.page(number or 1), ""
    except PageNotAnInteger:
        return paginator.page(1), "That page number is not a number; showing the first page."
    except EmptyPage:
        last = paginator.num_pages
        return paginator.page(last), f"There is no page {str(number)[:12]}; showing page {last}."


def session_groups(student, grouping: str | None, page_number: str | None) -> SessionPage:
    notice = ""
    if grouping is None or grouping == "":
        grouping = "assignment"
    elif grouping not in GROUPINGS:
        notice = "There is no such grouping; showing your sessions by assignment."
        grouping = "assignment"
    keys = (
        ["problem_id"] if grouping == "problem" else ["assignment_id", "classroom_id", "problem_id"]
    )
    rows = (
        TutoringSession.objects.filter(student=student)
        .values(*keys)
        .annotate(
            sessions=Count("id"),
            solved=Count("id", filter=Q(outcome=TutoringSession.Outcome.SOLVED)),
            latest_session_id=Max("id"),
            last_active=Max("updated_at"),
        )
    )
    if grouping == "assignment":
        # Newest assignment first, free practice last; within each, the most recent work first.
        rows = rows.order_by(
            F("assignment_id").desc(nulls_last=True),
            F("classroom_id").desc(nulls_last=True),
            "-last_active",
            "problem_id",
        )
    else:
        rows = rows.order_by("-last_active", "problem_id")
    page, page_notice = paged(rows, page_number, ROWS_PER_PAGE)
    notice = notice or page_notice
    values = list(page.object_list)
    problems = Problem.objects.in_bulk({row["problem_id"] for row in values})
    assignment_ids = {row.get("assignment_id") for row in values} - {None}
    assignments = (
        Assignment.objects.select_related("classroom").in_bulk(assignment_ids)
        if assignment_ids
        else {}
    )
    groups = [
        SessionGroup(
            problem=problems[row["problem_id"]],
            assignment=assignments.get(row.get("assignment_id")),
            classroom_id=row.get("classroom_id"),
            sessions=row["sessions"],
            solved=row["solved"] > 0,
            latest_session_id=row["latest_session_id"],
            last_active=row["last_active"],
        )
        for row in values
    ]
    return SessionPage(grouping=grouping, page=page, rows=groups, notice=notice)
