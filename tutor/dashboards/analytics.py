"""Class analytics: what the dashboard shows, from a fixed number of aggregate queries.

Class data is the sessions opened for the class (``TutoringSession.classroom``) by students
enrolled in it. Per student and per skill (a problem's ``skills`` list; a session counts for
each skill of its problem):

- attempts: answers submitted (``AnswerAttempt``), right or wrong;
- sessions, solved, solve rate: sessions solved / sessions;
- time on task: per session, the gaps between consecutive messages, each capped at
  ``IDLE_CAP_SECONDS`` (a student who leaves for lunch is not working), summed;
- hints: tutor turns;
- mastery: Bayesian Knowledge Tracing, fitted per skill on the class's attempts in time order
  (``training.knowledge_tracing``; weak priors keep thin skills sensible), the student's
  P(mastered) after their last attempt.

Queries do not depend on the number of students: one per table, aggregated in SQL by
(student, problem, assignment), which is bounded by the roster times the problems used, and one
ordered read of the attempts (one row per answer) for knowledge tracing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from django.core.cache import cache
from django.db import connections
from django.db.models import Count, F, FloatField, Func, Q, Window
from django.db.models.functions import Lag
from django.urls import reverse
from django.utils import timezone

from training.knowledge_tracing import BKTParams, fit_bkt, mastery_trajectories
from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues.models import AnswerAttempt, Message, TutoringSession
from tutor.problems.models import Problem

IDLE_CAP_SECONDS = 600
ACTIVITY_CACHE_SECONDS = 600
FIT_CACHE_SECONDS = 24 * 3600
STUCK_WRONG_ATTEMPTS = 3
LOW_MASTERY = 0.4
LOW_MASTERY_MIN_ATTEMPTS = 3
NO_SKILL = "(no skill)"


class EpochSeconds(Func):
    """Seconds since the epoch of a datetime column, as a float, on PostgreSQL and SQLite."""

    output_field = FloatField()
    # date_part gives double precision (EXTRACT gives numeric, slower, on PostgreSQL 14+).
    template = "date_part('epoch', %(expressions)s)"

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        )


@dataclass
class Tally:
    """Counts for one student, one skill, or one student on one skill."""

    attempts: int = 0
    correct: int = 0
    sessions: int = 0
    solved: int = 0
    seconds: float = 0.0
    hints: int = 0
    last_activity: float | None = None  # epoch seconds
    mastery: float | None = None

    def add(self, sessions=0, solved=0, attempts=0, correct=0, seconds=0.0, hints=0, last=None):
        self.sessions += sessions
        self.solved += solved
        self.attempts += attempts
        self.correct += correct
        self.seconds += seconds
        self.hints += hints
        if last is not None and (self.last_activity is None or last > self.last_activity):
            self.last_activity = last

    def merge(self, other: Tally) -> None:
        self.add(
            other.sessions,
            other.solved,
            other.attempts,
            other.correct,
            other.seconds,
            other.hints,
            other.last_activity,
        )

    def as_dict(self) -> dict:
        return {
            "attempts": self.attempts,
            "correct": self.correct,
            "sessions": self.sessions,
            "solved": self.solved,
            "solve_rate": round(self.solved / self.sessions, 4) if self.sessions else None,
            "time_on_task_s": round(self.seconds, 1),
            "hints": self.hints,
            "mastery": None if self.mastery is None else round(self.mastery, 4),
            "last_activity": _iso(self.last_activity),
        }


@dataclass
class Student:
    id: int
    name: str
    total: Tally = field(default_factory=Tally)
    skills: dict[str, Tally] = field(default_factory=dict)
    reasons: list[dict] = field(default_factory=list)

    def skill(self, name: str) -> Tally:
        tally = self.skills.get(name)
        if tally is None:
            tally = self.skills[name] = Tally()
        return tally


@dataclass
class SkillSequences:
    """One skill's attempts, per student in time order (parallel lists)."""

    students: list[int] = field(default_factory=list)
    outcomes: list[list[bool]] = field(default_factory=list)
    times: list[list[float]] = field(default_factory=list)


class ClassAnalytics:
    """Loads lazily: each property runs its own query once. Queries never depend on how many
    students the class has."""

    def __init__(self, classroom: Classroom, now: dt.datetime | None = None) -> None:
        self.classroom = classroom
        self.now = now or timezone.now()

    # -- queries ---------------------------------------------------------------------------

    def _class_sessions(self):
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
        used = self._class_sessions().values("problem_id")
        rows = Problem.objects.filter(id__in=used).values_list("id", "title", "skills")
        return {pid: (title, _skills(skills)) for pid, title, skills in rows}

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
    def session_activity(self) -> dict[int, tuple[int, int, int | None, int, int, float, float]]:
        """session -> (student, problem, assignment, messages, tutor turns, capped seconds,
        last message time).

        Time on task needs every message (the gaps between them), the one part of the
        dashboard whose cost grows with the history. Messages are only ever appended, so the
        per-session figures are kept in the cache with the highest message id they include:
        each request reads only the sessions that have newer messages (one query, usually
        returning nothing), and the first request after a restart or ``ACTIVITY_CACHE_SECONDS``
        reads them all.
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
        return list(
            Assignment.objects.filter(classroom=self.classroom, due_at__lt=self.now)
            .order_by("due_at", "id")
            .values_list("id", "title", "due_at")
        )

    # -- knowledge tracing -----------------------------------------------------------------

    def _skills_of(self, problem_id: int) -> list[str]:
        return self.problems.get(problem_id, ("", [NO_SKILL]))[1]

    @cached_property
    def sequences(self) -> dict[str, SkillSequences]:
        """skill -> each enrolled student's attempts on it, in time order."""
        by_skill: dict[str, SkillSequences] = {}
        enrolled = self.roster
        current: dict[str, int] = {}  # skill -> student of its last row (rows come by student)
        for student, problem, correct, ts in self.attempts:
            if student not in enrolled:
                continue
            for skill in self._skills_of(problem):
                seqs = by_skill.get(skill)
                if seqs is None:
                    seqs = by_skill[skill] = SkillSequences()
                if current.get(skill) != student:
                    current[skill] = student
                    seqs.students.append(student)
                    seqs.outcomes.append([])
                    seqs.times.append([])
                seqs.outcomes[-1].append(correct)
                seqs.times[-1].append(ts)
        return dict(sorted(by_skill.items()))

    @cached_property
    def skill_params(self) -> dict[str, BKTParams]:
        """BKT fitted per skill. A fit depends only on the outcome sequences, so it is cached
        under their digest: the same attempts always give the same parameters."""
        params = {}
        for skill, seqs in self.sequences.items():
            digest = hashlib.sha1(usedforsecurity=False)
            for outcomes in seqs.outcomes:
                digest.update(bytes(outcomes))
                digest.update(b"|")
            key = f"dashboards:bkt:v1:{digest.hexdigest()}"
            fitted = cache.get(key)
            if fitted is None:
                fitted = fit_bkt(seqs.outcomes).params
                cache.set(key, fitted, FIT_CACHE_SECONDS)
            params[skill] = fitted
        return params

    @cached_property
    def trajectories(self) -> dict[str, list[list[float]]]:
        """skill -> per student (as in ``sequences``) P(mastered) after each attempt."""
        return {
            skill: mastery_trajectories(self.skill_params[skill], seqs.outcomes)
            for skill, seqs in self.sequences.items()
        }

    # -- what the endpoints return ---------------------------------------------------------

    def summary(self) -> dict:
        students = {sid: Student(sid, name) for sid, name in self.roster.items()}
        active: set[tuple[int, int | None]] = set()
        titles = {pid: title for pid, (title, _) in self.problems.items()}

        # Per (student, problem) first, then spread over the problem's skills.
        per_problem: dict[tuple[int, int], Tally] = defaultdict(Tally)
        for student, problem, _assignment, n, solved in self.session_counts:
            if student in students:
                per_problem[student, problem].add(sessions=n, solved=solved)
        for student, problem, assignment, n, hints, seconds, last in self.session_activity.values():
            if student in students:
                per_problem[student, problem].add(seconds=seconds, hints=hints, last=last)
                if n:
                    active.add((student, assignment))
        answers = Counter(
            (student, problem, correct) for student, problem, correct, _ in self.attempts
        )
        for (student, problem, correct), n in answers.items():
            if student in students:
                per_problem[student, problem].add(attempts=n, correct=n if correct else 0)
        for (student, problem), tally in per_problem.items():
            row = students[student]
            row.total.merge(tally)
            for skill in self._skills_of(problem):
                row.skill(skill).merge(tally)

        for skill, seqs in self.sequences.items():
            for student, trajectory in zip(seqs.students, self.trajectories[skill], strict=True):
                students[student].skill(skill).mastery = trajectory[-1]

        # Needs attention, most urgent kind first.
        for session, student, problem, wrong in self.stuck_sessions:
            if student in students:
                students[student].reasons.append(
                    {
                        "kind": "stuck",
                        "session_id": session,
                        "review_url": reverse("reviews:session", args=[session]),
                        "text": f"Stuck: {wrong} wrong answers on “{titles.get(problem, '')}”"
                        " and not solved yet",
                    }
                )
        for row in students.values():
            for skill, tally in sorted(row.skills.items()):
                if (
                    tally.mastery is not None
                    and tally.attempts >= LOW_MASTERY_MIN_ATTEMPTS
                    and tally.mastery < LOW_MASTERY
                ):
                    row.reasons.append(
                        {
                            "kind": "low_mastery",
                            "skill": skill,
                            "text": f"Low mastery of {skill}: {tally.mastery:.2f}"
                            f" after {tally.attempts} attempts",
                        }
                    )
        for assignment, title, due in self.overdue_assignments:
            for row in students.values():
                if (row.id, assignment) not in active:
                    row.reasons.append(
                        {
                            "kind": "overdue",
                            "assignment_id": assignment,
                            "text": f"No work on “{title}”, due {due:%b} {due.day}",
                        }
                    )

        skill_totals: dict[str, Tally] = defaultdict(Tally)
        masteries: dict[str, list[float]] = defaultdict(list)
        for row in students.values():
            for skill, tally in row.skills.items():
                skill_totals[skill].merge(tally)
                if tally.mastery is not None:
                    masteries[skill].append(tally.mastery)
        skills_out = []
        for skill in sorted(skill_totals):
            params = self.skill_params.get(skill)
            skills_out.append(
                {
                    "skill": skill,
                    **skill_totals[skill].as_dict(),
                    "mastery": _mean(masteries[skill]),
                    "students_with_attempts": len(masteries[skill]),
                    "bkt": params.as_dict() if params else None,
                }
            )
        return {
            "classroom": {"id": self.classroom.pk, "name": self.classroom.name},
            "generated_at": self.now.isoformat(),
            "thresholds": {
                "idle_cap_s": IDLE_CAP_SECONDS,
                "stuck_wrong_attempts": STUCK_WRONG_ATTEMPTS,
                "low_mastery": LOW_MASTERY,
                "low_mastery_min_attempts": LOW_MASTERY_MIN_ATTEMPTS,
            },
            "skills": skills_out,
            "students": [
                {
                    "id": row.id,
                    "name": row.name,
                    **row.total.as_dict(),
                    "mastery": _mean(t.mastery for t in row.skills.values()),
                    "needs_attention": bool(row.reasons),
                    "skills": {skill: row.skills[skill].as_dict() for skill in sorted(row.skills)},
                }
                for row in students.values()
            ],
            "needs_attention": [
                {"student_id": row.id, "name": row.name, "reasons": row.reasons}
                for row in students.values()
                if row.reasons
            ],
        }

    def mastery_over_time(self) -> dict:
        """Per skill, the class's mean P(mastered) at the end of each day (UTC) with attempts,
        over the students who had attempted the skill by then (each at their latest
        estimate)."""
        series = {}
        for skill, seqs in self.sequences.items():
            events = sorted(
                (ts, column, p)
                for column, (times, trajectory) in enumerate(
                    zip(seqs.times, self.trajectories[skill], strict=True)
                )
                for ts, p in zip(times, trajectory, strict=True)
            )
            latest: dict[int, float] = {}
            total = 0.0
            days: list[dict] = []
            for index, (ts, column, p) in enumerate(events):
                total += p - latest.get(column, 0.0)
                latest[column] = p
                day = int(ts // 86400)
                if index + 1 < len(events) and int(events[index + 1][0] // 86400) == day:
                    continue
                days.append(
                    {
                        "date": dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat(),
                        "mastery": round(total / len(latest), 4),
                        "students": len(latest),
                    }
                )
            series[skill] = days
        return {
            "classroom": {"id": self.classroom.pk, "name": self.classroom.name},
            "skills": list(series),
            "series": series,
            "params": {skill: params.as_dict() for skill, params in self.skill_params.items()},
        }


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    # Milliseconds: SQLite's julianday arithmetic is only that precise.
    return dt.datetime.fromtimestamp(round(epoch, 3), tz=dt.UTC).isoformat()


def _mean(values) -> float | None:
    present = [value for value in values if value is not None]
    return round(sum(present) / len(present), 4) if present else None


def _skills(value) -> list[str]:
    if isinstance(value, list):
        names = [str(item).strip() for item in value if str(item).strip()]
        if names:
            return list(dict.fromkeys(names))
    return [NO_SKILL]
