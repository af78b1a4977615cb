"""What the class dashboard's endpoints return: the figures per student and per skill, who
needs attention and why, and the mastery chart's series, as JSON-ready dicts.

Per student and per skill (a session counts for each skill of its problem):

- attempts: answers submitted (``AnswerAttempt``), right or wrong;
- sessions, solved, solve rate: sessions solved / sessions;
- time on task: per session, the gaps between consecutive messages, each capped at
  ``IDLE_CAP_SECONDS``, summed;
- hints: tutor turns;
- mastery: the student's P(mastered) after their last attempt (:mod:`.mastery`).

The data comes from :class:`tutor.dashboards.queries.ClassQueries`; nothing here queries.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from .mastery import ClassMastery
from .queries import IDLE_CAP_SECONDS, STUCK_WRONG_ATTEMPTS, ClassQueries

LOW_MASTERY = 0.4
LOW_MASTERY_MIN_ATTEMPTS = 3

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


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

    def add(
        self,
        sessions: int = 0,
        solved: int = 0,
        attempts: int = 0,
        correct: int = 0,
        seconds: float = 0.0,
        hints: int = 0,
        last: float | None = None,
    ) -> None:
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

    def as_dict(self) -> dict[str, Any]:
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
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def skill(self, name: str) -> Tally:
        tally = self.skills.get(name)
        if tally is None:
            tally = self.skills[name] = Tally()
        return tally


def _tally_students(
    data: ClassQueries, mastery: ClassMastery
) -> tuple[dict[int, Student], set[tuple[int, int | None]]]:
    """Each enrolled student's totals and per-skill tallies, with their mastery; and the
    (student, assignment) pairs that have any message."""
    students = {sid: Student(sid, name) for sid, name in data.roster.items()}
    active: set[tuple[int, int | None]] = set()
    # Per (student, problem) first, then spread over the problem's skills.
    per_problem: dict[tuple[int, int], Tally] = defaultdict(Tally)
    for student, problem, _assignment, n, solved in data.session_counts:
        if student in students:
            per_problem[student, problem].add(sessions=n, solved=solved)
    for student, problem, assignment, n, hints, seconds, last in data.session_activity.values():
        if student in students:
            per_problem[student, problem].add(seconds=seconds, hints=hints, last=last)
            if n:
                active.add((student, assignment))
    answers = Counter((student, problem, correct) for student, problem, correct, _ in data.attempts)
    for (student, problem, correct), n in answers.items():
        if student in students:
            per_problem[student, problem].add(attempts=n, correct=n if correct else 0)
    for (student, problem), tally in per_problem.items():
        row = students[student]
        row.total.merge(tally)
        for skill in data.skills_of(problem):
            row.skill(skill).merge(tally)

    for skill, seqs in mastery.sequences.items():
        for student, trajectory in zip(seqs.students, mastery.trajectories[skill], strict=True):
            students[student].skill(skill).mastery = trajectory[-1]
    return students, active


def _flag_attention(
    data: ClassQueries, students: dict[int, Student], active: set[tuple[int, int | None]]
) -> None:
    """Add why each student needs attention to their ``reasons``, most urgent kind first."""
    titles = {pid: title for pid, (title, _) in data.problems.items()}
    for session, student, problem, wrong in data.stuck_sessions:
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
    for assignment, title, due in data.overdue_assignments:
        for row in students.values():
            if (row.id, assignment) not in active:
                row.reasons.append(
                    {
                        "kind": "overdue",
                        "assignment_id": assignment,
                        "text": f"No work on “{title}”, due {due:%b} {due.day}",
                    }
                )


def _skill_rows(students: dict[int, Student], mastery: ClassMastery) -> list[dict[str, Any]]:
    """Per skill, the class's totals, mean mastery and fitted parameters."""
    skill_totals: dict[str, Tally] = defaultdict(Tally)
    masteries: dict[str, list[float]] = defaultdict(list)
    for row in students.values():
        for skill, tally in row.skills.items():
            skill_totals[skill].merge(tally)
            if tally.mastery is not None:
                masteries[skill].append(tally.mastery)
    rows = []
    for skill in sorted(skill_totals):
        params = mastery.params.get(skill)
        rows.append(
            {
                "skill": skill,
                **skill_totals[skill].as_dict(),
                "mastery": _mean(masteries[skill]),
                "students_with_attempts": len(masteries[skill]),
                "bkt": params.as_dict() if params else None,
            }
        )
    return rows


def summary_payload(data: ClassQueries, mastery: ClassMastery | None = None) -> dict[str, Any]:
    """The dashboard's summary: thresholds, per skill, per student, and who needs attention."""
    mastery = mastery or ClassMastery(data)
    students, active = _tally_students(data, mastery)
    _flag_attention(data, students, active)
    return {
        "classroom": {"id": data.classroom.pk, "name": data.classroom.name},
        "generated_at": data.now.isoformat(),
        "thresholds": {
            "idle_cap_s": IDLE_CAP_SECONDS,
            "stuck_wrong_attempts": STUCK_WRONG_ATTEMPTS,
            "low_mastery": LOW_MASTERY,
            "low_mastery_min_attempts": LOW_MASTERY_MIN_ATTEMPTS,
        },
        "skills": _skill_rows(students, mastery),
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


def mastery_payload(data: ClassQueries, mastery: ClassMastery | None = None) -> dict[str, Any]:
    """Per skill, the class's mean P(mastered) at the end of each day (UTC) with attempts,
    over the students who had attempted the skill by then (each at their latest estimate)."""
    mastery = mastery or ClassMastery(data)
    series = {}
    for skill, seqs in mastery.sequences.items():
        events = sorted(
            (ts, column, p)
            for column, (times, trajectory) in enumerate(
                zip(seqs.times, mastery.trajectories[skill], strict=True)
            )
            for ts, p in zip(times, trajectory, strict=True)
        )
        latest: dict[int, float] = {}
        total = 0.0
        days: list[dict[str, Any]] = []
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
        "classroom": {"id": data.classroom.pk, "name": data.classroom.name},
        "skills": list(series),
        "series": series,
        "params": {skill: params.as_dict() for skill, params in mastery.params.items()},
    }


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    # Milliseconds: SQLite's julianday arithmetic is only that precise.
    return dt.datetime.fromtimestamp(round(epoch, 3), tz=dt.UTC).isoformat()


def _mean(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(sum(present) / len(present), 4) if present else None
