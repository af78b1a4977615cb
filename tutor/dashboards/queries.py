"""The class dashboard's database reads: a fixed number of aggregate queries per class.

Class data is the sessions opened for the class (``TutoringSession.classroom``) by students
enrolled in it. Queries do not depend on the number of students: one per table, aggregated in
SQL by (student, problem, assignment), which is bounded by the roster times the problems used,
and one ordered read of the attempts (one row per answer) for knowledge tracing.

What the figures mean, and how they are shown, is :mod:`tutor.dashboards.presentation`.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any

from django.core.cache import cache
from django.db import connections
from django.db.models import Count, F, FloatField, Func, Q, QuerySet, Window
from django.db.models.functions import Lag
from django.utils import timezone

from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues.models import AnswerAttempt, Message, TutoringSession
from tutor.problems.models import Problem

IDLE_CAP_SECONDS = 600
ACTIVITY_CACHE_SECONDS = 600
STUCK_WRONG_ATTEMPTS = 3
NO_SKILL = "(no skill)"

# session -> (student, problem, assignment, messages, tutor turns, capped seconds, last message)
Activity = tuple[int, int, int | None, int, int, float, float]


class EpochSeconds(Func):
    """Seconds since the epoch of a datetime column, as a float, on PostgreSQL and SQLite."""

    output_field = FloatField()
    # date_part gives double precision (EXTRACT gives numeric, slower, on PostgreSQL 14+).
    template = "date_part('epoch', %(expressions)s)"

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        )


def problem_skills(value: Any) -> list[str]:
    """A problem's ``skills`` field as a list of distinct names; ``NO_SKILL`` when empty."""
    if isinstance(value, list):
        names = [str(item).strip() for item in value if str(item).strip()]
        if names:
            return list(dict.fromkeys(names))
    return [NO_SKILL]


class ClassQueries:
    """One class's dashboard data. Loads lazily: each property runs its own query once."""

    def __init__(self, classroom: Classroom, now: dt.datetime | None = None) -> None:
        self.classroom = classroom
        self.now = now or timezone.now()

    def _class_sessions(self) -> QuerySet[TutoringSession]:
        return TutoringSession.objects.filter(classroom=self.classroom)

    @cached_property
    def roster(self) -> dict[int, str]:
        """Enrolled students: id -> display name, ordered by name."""
        rows = (
            Enrollment.objects.filter(classroom=self.classroom)
            .order_by("student__last_name", "student__first_name", "student__username")
            .values_list(
                "student_id", "student__username", "student__first_name", "student__last_name"
            )
        )
        return {sid: f"{first} {last}".strip() or username for sid, username, first, last in rows}

    @cached_property
    def problems(self) -> dict[int, tuple[str, list[str]]]:
        """Problems the class has sessions on: id -> (title, skills)."""
        used = self._class_sessions().values("problem_id")
        rows = Problem.objects.filter(id__in=used).values_list("id", "title", "skills")
        return {pid: (title, problem_skills(skills)) for pid, title, skills in rows}

    def skills_of(self, problem_id: int) -> list[str]:
        return self.problems.get(problem_id, ("", [NO_SKILL]))[1]

    @cached_property
    def session_counts(self) -> list[tuple[int, int, int | None, int, int]]:
        """(student, problem, assignment, sessions, solved)."""
        return list(
            self._class_sessions()
            .order_by()
            .values_list("student_id", "problem_id", "assignment_id")
            .annotate(
                n=Count("id"), solved=Count("id", filter=Q(outcome=TutoringSession.Outcome.SOLVED))
            )
        )

    @cached_property
    def session_activity(self) -> dict[int, Activity]:
        """session -> (student, problem, assignment, messages, tutor turns, capped seconds,
        last message time).

        Time on task is, per session, the gaps between consecutive messages, each capped at
        ``IDLE_CAP_SECONDS`` (a student who leaves for lunch is not working), summed. It needs
        every message, the one part of the dashboard whose cost grows with the history.
        Messages are only ever appended, so the per-session figures are kept in the cache with
        the highest message id they include: each request reads only the sessions that have
        newer messages (one query, usually returning nothing), and the first request after a
        restart or ``ACTIVITY_CACHE_SECONDS`` reads them all.
        """
        key = f"dashboards:activity:v1:{self.classroom.pk}"
        cached = cache.get(key)
        high, sessions = cached if cached else (0, {})
        messages = Message.objects.filter(session__classroom=self.classroom).order_by()
        if high:
            newer = Message.objects.filter(id__gt=high).values("session_id")
            messages = messages.filter(session_id__in=newer)
        inner = messages.annotate(
            m_student=F("session__student_id"),
            m_problem=F("session__problem_id"),
            m_assignment=F("session__assignment_id"),
            m_role=F("role"),
            m_ts=EpochSeconds("created_at"),
            m_prev=Window(
                Lag(EpochSeconds("created_at")),
                partition_by=[F("session_id")],
                order_by=[F("created_at").asc(), F("id").asc()],
            ),
        ).values(
            "id", "session_id", "m_student", "m_problem", "m_assignment", "m_role", "m_ts", "m_prev"
        )
        sql, params = inner.query.sql_with_params()
        gap = "(m.m_ts - m.m_prev)"
        outer = f"""
            SELECT m.session_id, MIN(m.m_student), MIN(m.m_problem), MIN(m.m_assignment),
                   COUNT(*),
                   SUM(CASE WHEN m.m_role = %s THEN 1 ELSE 0 END),
                   SUM(CASE WHEN m.m_prev IS NULL THEN 0 WHEN {gap} > %s THEN %s
                            WHEN {gap} < 0 THEN 0 ELSE {gap} END),
                   MAX(m.m_ts), MAX(m.id)
            FROM ({sql}) m
            GROUP BY m.session_id
        """  # the inner SQL is Django's; values go as parameters
        with connections[inner.db].cursor() as cursor:
            # The outer placeholders come first in the text, then the inner query's.
            cursor.execute(outer, (Message.Role.TUTOR, IDLE_CAP_SECONDS, IDLE_CAP_SECONDS, *params))
            rows = cursor.fetchall()
        if rows or not cached:
            sessions = dict(sessions)
            for session, student, problem, assignment, n, tutor, seconds, last, top in rows:
                sessions[session] = (
                    student,
                    problem,
                    assignment,
                    int(n),
                    int(tutor or 0),
                    float(seconds or 0),
                    float(last),
                )
                high = max(high, top)
            cache.set(key, (high, sessions), ACTIVITY_CACHE_SECONDS)
        return sessions

    @cached_property
    def attempts(self) -> list[tuple[int, int, bool, float]]:
        """Every answer in the class, in time order per student:
        (student, problem, correct, epoch seconds)."""
        return list(
            AnswerAttempt.objects.filter(session__classroom=self.classroom)
            .order_by("session__student_id", "created_at", "id")
            .annotate(a_ts=EpochSeconds("created_at"))
            .values_list("session__student_id", "session__problem_id", "correct", "a_ts")
        )

    @cached_property
    def stuck_sessions(self) -> list[tuple[int, int, int, int]]:
        """Open, unsolved sessions with at least ``STUCK_WRONG_ATTEMPTS`` wrong answers:
        (session, student, problem, wrong answers)."""
        return list(
            self._class_sessions()
            .filter(status=TutoringSession.Status.OPEN)
            .exclude(outcome=TutoringSession.Outcome.SOLVED)
            .annotate(wrong=Count("attempts", filter=Q(attempts__correct=False)))
            .filter(wrong__gte=STUCK_WRONG_ATTEMPTS)
            .order_by("created_at", "id")
            .values_list("id", "student_id", "problem_id", "wrong")
        )

    @cached_property
    def overdue_assignments(self) -> list[tuple[int, str, dt.datetime]]:
        """The class's assignments due before ``now``: (assignment, title, due)."""
        rows = (
            Assignment.objects.filter(classroom=self.classroom, due_at__lt=self.now)
            .order_by("due_at", "id")
            .values_list("id", "title", "due_at")
        )
        return [(pk, title, due) for pk, title, due in rows if due is not None]
