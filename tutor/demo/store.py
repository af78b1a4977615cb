"""Writes a :class:`.plan.Plan` to the database: one transaction, bulk inserts, so the number of
queries does not grow with the number of students (only with the rows per batch on SQLite).

``created_at`` fields are filled in by Django on insert (``auto_now_add``), so the plan's dates
are set afterwards with one parametrised UPDATE per table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from django.db import connections, models, transaction

from tutor.accounts.models import Role, User
from tutor.classes.models import Assignment, Classroom, Enrollment
from tutor.dialogues.models import (
    AnswerAttempt,
    BlockedReply,
    GuardOutcome,
    Message,
    ReplyRating,
    TutoringSession,
)
from tutor.problems.bank import mathdial_problem_fields
from tutor.problems.models import Problem
from tutor.retraining.models import ModelVersion
from tutor.retraining.services import base_version
from tutor.reviews.models import Flag, TurnRating

from .people import DemoStudent
from .plan import Plan, PlannedMessage, PlannedRating, PlannedSession
from .source import TUTOR, DemoProblem


class DemoSeedError(Exception):
    """The demo cannot be seeded (a missing account, a name taken by another role)."""


@dataclass
class StoredCounts:
    students: int = 0
    sessions: int = 0
    messages: int = 0
    attempts: int = 0
    flags: int = 0
    ratings: int = 0
    student_ratings: int = 0
    blocked_replies: int = 0

    def __str__(self) -> str:
        return ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in vars(self).items())


def demo_students(students: Iterable[DemoStudent]) -> dict[str, User]:
    """The class's accounts by username: the demo logins must exist; simulated students are
    created (no usable password: nobody logs in as them) unless they already do."""
    wanted = {s.username: s for s in students}
    users = {u.username: u for u in User.objects.filter(username__in=wanted)}
    missing_logins = [name for name, s in wanted.items() if not s.simulated and name not in users]
    if missing_logins:
        raise DemoSeedError(f"missing demo accounts {missing_logins}: run seed_demo first")
    not_students = [name for name, user in users.items() if user.role != Role.STUDENT]
    if not_students:
        raise DemoSeedError(f"these accounts are not students: {not_students}")
    new = []
    for name, student in wanted.items():
        if name in users:
            continue
        user = User(
            username=name,
            first_name=student.first_name,
            last_name=student.last_name,
            role=Role.STUDENT,
        )
        user.set_unusable_password()
        new.append(user)
    for user in User.objects.bulk_create(new):
        users[user.username] = user
    return users


def bank_problems(problems: Iterable[DemoProblem]) -> dict[str, Problem]:
    """The MathDial problems in the bank by qid, imported as ``import_mathdial`` would when
    missing (rows already there are left as they are)."""
    records = {p.qid: p.record for p in problems}
    found = {
        p.source_id: p
        for p in Problem.objects.filter(source=Problem.Source.MATHDIAL, source_id__in=records)
    }
    new = [
        Problem(source=Problem.Source.MATHDIAL, **mathdial_problem_fields(record))
        for qid, record in records.items()
        if qid not in found
    ]
    for problem in Problem.objects.bulk_create(new):
        found[problem.source_id] = problem
    return found


def _classroom(plan: Plan, teacher: User, name: str, users: dict[str, User]) -> Classroom:
    classroom = Classroom.objects.create(
        name=name, teacher=teacher, pedagogy_instructions=plan.instructions
    )
    Classroom.objects.filter(pk=classroom.pk).update(created_at=plan.created_at)
    Enrollment.objects.bulk_create(
        Enrollment(classroom=classroom, student=users[s.username]) for s in plan.students
    )
    Enrollment.objects.filter(classroom=classroom).update(
        joined_at=plan.created_at + dt.timedelta(hours=1)
    )
    return classroom


def _assignments(
    plan: Plan, classroom: Classroom, problems: dict[str, Problem]
) -> list[Assignment]:
    built = []
    for a in plan.assignments:
        row = Assignment(
            classroom=classroom,
            title=a.title,
            due_at=a.due_at,
            pedagogy_instructions=a.instructions,
        )
        row.created_at = a.created_at
        built.append(row)
    rows = _insert_dated(Assignment, built, "created_at")
    through = Assignment.problems.through
    through.objects.bulk_create(
        through(assignment_id=row.pk, problem_id=problems[qid].pk)
        for row, planned in zip(rows, plan.assignments, strict=True)
        for qid in planned.qids
    )
    return rows


def _message(session: TutoringSession, planned: PlannedMessage, version: ModelVersion) -> Message:
    if planned.speaker != TUTOR:
        message = Message(session=session, role=Message.Role.STUDENT, text=planned.text)
    else:
        # Timings of the order a CPU-served small model streams at.
        length = len(planned.text)
        message = Message(
            session=session,
            role=Message.Role.TUTOR,
            text=planned.text,
            finish_reason="stop",
            model_name=version.name,
            model_version=version,
            leaked_answer=bool(planned.leaked),
            guard=GuardOutcome.RETRIED if planned.blocked_text else GuardOutcome.PASSED,
            time_to_first_token_ms=250 + (length * 37) % 600,
            duration_ms=400 + 12 * length,
        )
    message.created_at = planned.at
    return message


def write_plan(
    plan: Plan, teacher: User, problems: Sequence[DemoProblem], name: str
) -> tuple[Classroom, StoredCounts]:
    """Create the class and its history in one transaction."""
    with transaction.atomic():
        users = demo_students(plan.students)
        bank = bank_problems(problems)
        version = base_version()
        classroom = _classroom(plan, teacher, name, users)
        assignments = _assignments(plan, classroom, bank)
        sessions = []
        for s in plan.sessions:
            session = TutoringSession(
                student=users[s.student],
                problem=bank[s.qid],
                classroom=classroom,
                assignment=assignments[s.assignment],
                model_name=version.name,
                status=s.status,
                outcome=s.outcome,
                solved_at=s.solved_at,
            )
            session.created_at, session.updated_at = s.created_at, s.updated_at
            sessions.append(session)
        sessions = _insert_dated(TutoringSession, sessions, "created_at", "updated_at")
        counts = _history(list(zip(plan.sessions, sessions, strict=True)), users, teacher, version)
        counts.students = len(plan.students)
    return classroom, counts


def _history(
    pairs: list[tuple[PlannedSession, TutoringSession]],
    users: dict[str, User],
    teacher: User,
    version: ModelVersion,
) -> StoredCounts:
    """Messages, answers, ratings, blocked attempts and flags of the stored sessions."""
    built = [_message(session, m, version) for planned, session in pairs for m in planned.messages]
    messages = iter(_insert_dated(Message, built, "created_at"))
    attempts, blocked, flags, ratings, thumbs = [], [], [], [], []
    for planned, session in pairs:
        rows = [next(messages) for _ in planned.messages]
        for a in planned.attempts:
            attempt = AnswerAttempt(session=session, answer=a.answer, correct=a.correct)
            attempt.created_at = a.at
            attempts.append(attempt)
        for m, row in zip(planned.messages, rows, strict=True):
            if m.blocked_text:
                block = BlockedReply(
                    message=row,
                    attempt=1,
                    text=m.blocked_text,
                    reason=BlockedReply.Reason.ANSWER_LEAK,
                    detail=m.blocked_value,
                )
                block.created_at = m.at
                blocked.append(block)
            if m.rating is not None:
                ratings.append(_turn_rating(row, teacher, m.rating))
            if m.thumb is not None:
                helpful, reason, at = m.thumb
                thumb = ReplyRating(
                    student=users[planned.student], message=row, helpful=helpful, reason=reason
                )
                thumb.created_at = thumb.updated_at = at
                thumbs.append(thumb)
        for f in planned.flags:
            flag = Flag(
                session=session,
                message=rows[f.message],
                kind=f.kind,
                severity=f.severity,
                category=f.category,
                detail=f.detail,
                resolved_at=f.resolved_at,
                resolved_by=teacher if f.resolved_at else None,
            )
            flag.created_at = f.at
            flags.append(flag)
    _insert_dated(AnswerAttempt, attempts, "created_at")
    _insert_dated(BlockedReply, blocked, "created_at")
    _insert_dated(Flag, flags, "created_at")
    _insert_dated(TurnRating, ratings, "created_at", "updated_at")
    _insert_dated(ReplyRating, thumbs, "created_at", "updated_at")
    return StoredCounts(
        sessions=len(pairs),
        messages=len(built),
        attempts=len(attempts),
        flags=len(flags),
        ratings=len(ratings),
        student_ratings=len(thumbs),
        blocked_replies=len(blocked),
    )


def _turn_rating(message: Message, teacher: User, r: PlannedRating) -> TurnRating:
    rating = TurnRating(
        message=message,
        rater=teacher,
        helpful=r.helpful,
        no_answer_reveal=r.no_answer_reveal,
        correct=r.correct,
        encourages_thinking=r.encourages_thinking,
        teacher_move=r.teacher_move,
        gave_away_answer=r.gave_away_answer,
        comment=r.comment,
    )
    rating.created_at = rating.updated_at = r.at
    return rating


M = TypeVar("M", bound=models.Model)


def _date_field(model: type[models.Model], name: str) -> models.DateTimeField:
    field = model._meta.get_field(name)
    if not isinstance(field, models.DateTimeField):
        raise TypeError(f"{model.__name__}.{name} is not a date and time")
    return field


def _insert_dated(model: type[M], rows: list[M], *names: str) -> list[M]:
    """Insert ``rows``, then give them back the dates they were built with: inserting replaces
    ``auto_now``/``auto_now_add`` fields with the time of the insert. One parametrised UPDATE
    run for all rows (``executemany``): ``bulk_update`` builds a CASE expression per row in
    Python, which costs far more here than the insert itself."""
    dates = [[getattr(row, name) for name in names] for row in rows]
    created = model._default_manager.bulk_create(rows)
    if not created:
        return created
    for row, values in zip(created, dates, strict=True):
        for name, value in zip(names, values, strict=True):
            setattr(row, name, value)
    connection = connections[model._default_manager.db]
    quote = connection.ops.quote_name
    fields = [_date_field(model, name) for name in names]
    assignments = ", ".join(f"{quote(str(field.column))} = %s" for field in fields)
    pk = model._meta.pk
    assert pk is not None and pk.column
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(pk.column)} = %s"
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
        + [row.pk]
        for row in created
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    return created
