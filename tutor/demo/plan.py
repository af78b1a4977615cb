"""The demo class's history as plain data, drawn from one seeded ``random.Random``: the same
choices every time (only the dates move with ``now``). No database here; :mod:`.store` writes
a plan.

Four weekly assignments of MathDial problems, the last one due next week. Each student works on
an assigned problem with the chance of their ``diligence`` and solves it with the chance of their
``ability``: a solved session is a whole MathDial dialogue with perhaps a wrong answer first (the
real student's own), an unsolved one stops partway with no answer or several wrong ones. The
teacher has rated the tutor turns of some sessions, students gave some replies a thumb, and the
flags are those the platform would have raised: tutor turns that gave the answer away, a reply
the answer guard held back (with the attempt it blocked), and a student message the moderation
check caught.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field
from fractions import Fraction

from pedagogy import numbers
from pedagogy.moderation import moderate

from .people import USERNAME_PREFIX, DemoStudent
from .source import STUDENT, TUTOR, DemoDialogue, DemoProblem

#: (title, due in days from now, instructions). Each gets PROBLEMS_PER_ASSIGNMENT problems and
#: opens a week before it is due.
ASSIGNMENTS: tuple[tuple[str, int, str], ...] = (
    ("Week 1: read the question twice", -15, ""),
    ("Week 2: one step at a time", -8, "Ask the student to say which step comes next."),
    ("Week 3: money, time and measures", -1, ""),
    ("Week 4: review", 6, "Review week: let the student explain before correcting."),
)
PROBLEMS_PER_ASSIGNMENT = 3
ASSIGNMENT_OPEN_DAYS = 7
CLASS_AGE_DAYS = 22
CLASS_INSTRUCTIONS = (
    "Grade 7. Encourage students to explain their reasoning in words before calculating."
)
#: Flags older than this have been resolved by the teacher.
RESOLVED_AFTER_DAYS = 7
#: Sessions whose tutor turns the teacher has rated.
RATED_SESSIONS = 10
#: Sessions with a reply the answer guard held back.
BLOCKED_SESSIONS = 2
#: A student's share of tutor turns given a thumb up or down.
STUDENT_RATING_SHARE = 0.15
#: What one student wrote beside the maths (the moderation check flags it).
UNSAFE_TEXT = "Sorry I'm slow today, I'm getting picked on at school and can't focus."

_RATING_COMMENTS = {
    "probing": "Good question: it makes the student find the next step.",
    "focus": "Brings the attention back to what matters.",
    "telling": "Told too much here; a question would have done.",
}
_UNHELPFUL_REASONS = ("I didn't understand the question.", "Too many questions, I wanted a hint.")
_HELPFUL_CHANCE = {"probing": 0.85, "focus": 0.8, "generic": 0.6, "telling": 0.45}
_MOVE_THINKING = {"probing": 5, "focus": 4, "generic": 3, "telling": 2}


@dataclass
class PlannedRating:
    """A teacher's rubric rating of a tutor turn (tutor.reviews.TurnRating)."""

    helpful: int
    no_answer_reveal: int
    correct: int
    encourages_thinking: int
    teacher_move: str
    gave_away_answer: bool
    comment: str
    at: dt.datetime


@dataclass
class PlannedMessage:
    speaker: str
    text: str
    at: dt.datetime
    move: str = ""
    # Tutor turns: the value it gave away ("" none), and the guard's blocked attempt with its
    # value (the visible reply is then the guard's second attempt).
    leaked: str = ""
    blocked_text: str = ""
    blocked_value: str = ""
    rating: PlannedRating | None = None
    # A student's thumb: (helpful, reason, when).
    thumb: tuple[bool, str, dt.datetime] | None = None


@dataclass
class PlannedAttempt:
    answer: str
    correct: bool
    at: dt.datetime


@dataclass
class PlannedFlag:
    kind: str  # tutor.reviews.models.Flag.Kind values
    severity: str
    category: str
    detail: str
    message: int  # index in the session's messages
    at: dt.datetime
    resolved_at: dt.datetime | None = None


@dataclass
class PlannedSession:
    student: str  # username
    qid: str
    assignment: int  # index in Plan.assignments
    messages: list[PlannedMessage]
    attempts: list[PlannedAttempt]
    flags: list[PlannedFlag] = field(default_factory=list)

    @property
    def created_at(self) -> dt.datetime:
        return self.messages[0].at

    @property
    def updated_at(self) -> dt.datetime:
        times = [m.at for m in self.messages] + [a.at for a in self.attempts]
        return max(times)

    @property
    def solved_at(self) -> dt.datetime | None:
        return next((a.at for a in self.attempts if a.correct), None)

    @property
    def outcome(self) -> str:  # TutoringSession.Outcome values
        if self.solved_at is not None:
            return "solved"
        return "incorrect" if self.attempts else "pending"

    @property
    def status(self) -> str:  # a correct answer closes a session (dialogues.services)
        return "closed" if self.solved_at is not None else "open"


@dataclass
class PlannedAssignment:
    title: str
    due_at: dt.datetime
    created_at: dt.datetime
    instructions: str
    qids: list[str]


@dataclass
class Plan:
    created_at: dt.datetime
    instructions: str
    students: list[DemoStudent]
    assignments: list[PlannedAssignment]
    sessions: list[PlannedSession]


def _seconds(rng: random.Random, low: int, high: int) -> dt.timedelta:
    return dt.timedelta(seconds=rng.randint(low, high))


def _unnamed(text: str, persona: str) -> str:
    """MathDial's teacher calls the student by the persona's name; the platform's tutor never
    learns a student's name, so it goes ("Hi Mariana, talk me through it" -> "Hi, talk me
    through it")."""
    if not persona:
        return text
    name = re.escape(persona)
    text = re.sub(rf"\b{name}['’]s\b", "your", text)
    text = re.sub(rf"^\s*{name}\b\s*[,!.]?\s*", "", text)
    text = re.sub(rf"[ \t]*,?[ \t]*\b{name}\b", "", text)
    return text[:1].upper() + text[1:]


def _number_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def wrong_answers(first: str, final_answer: str, count: int, rng: random.Random) -> list[str]:
    """``count`` distinct wrong answers: the real student's first answer, then slips around the
    right one (off by a little, doubled, halved)."""
    gold = numbers.answer_value(final_answer)
    if gold is None:
        raise ValueError(f"not one number: {final_answer!r}")
    answers: list[str] = []
    seen = {gold}
    first_value = numbers.answer_value(first) if first else None
    if first_value is not None and first_value not in seen:
        answers.append(first)
        seen.add(first_value)
    slips = [gold + 1, gold - 1, gold + 2, gold * 2, gold / 2, gold + 10, gold - 5, gold + 3]
    rng.shuffle(slips)
    for slip in slips:
        if len(answers) >= count:
            break
        if slip not in seen and slip >= 0:
            answers.append(_number_text(slip))
            seen.add(slip)
    return answers[:count]


def _start_time(
    rng: random.Random, opens: dt.datetime, due: dt.datetime, now: dt.datetime
) -> dt.datetime:
    """Some evening between the assignment's opening and a day past its due date, never in the
    last two hours (so that the whole session lies in the past)."""
    latest = min(due + dt.timedelta(days=1), now - dt.timedelta(hours=2))
    span = max(0.0, (latest - opens).total_seconds())
    day = opens + dt.timedelta(seconds=rng.uniform(0, span))
    start = day.replace(
        hour=rng.randint(15, 20), minute=rng.randint(0, 59), second=0, microsecond=0
    )
    return max(opens, min(start, latest))


def _timed_messages(
    dialogue: DemoDialogue, keep: int, start: dt.datetime, rng: random.Random
) -> list[PlannedMessage]:
    messages = []
    at = start
    for index, turn in enumerate(dialogue.turns[:keep]):
        text = _unnamed(turn.text, dialogue.persona) if turn.speaker == TUTOR else turn.text
        messages.append(
            PlannedMessage(
                speaker=turn.speaker,
                text=text,
                at=at,
                move=turn.move,
                leaked=dialogue.leak_at(index) if turn.speaker == TUTOR else "",
            )
        )
        # A tutor reply takes seconds; a student thinks and types for a minute or two.
        at += _seconds(rng, 4, 15) if turn.speaker == STUDENT else _seconds(rng, 30, 150)
    return messages


def _attempts(
    messages: list[PlannedMessage],
    problem: DemoProblem,
    dialogue: DemoDialogue,
    solved: bool,
    ability: float,
    rng: random.Random,
) -> list[PlannedAttempt]:
    if solved:
        wrong = 0 if rng.random() < ability else rng.choice((1, 1, 2))
    else:
        wrong = rng.choice((0, 1, 2, 3, 3, 4))
    answers = wrong_answers(dialogue.first_answer, problem.record.final_answer, wrong, rng)
    attempts = []
    # Wrong answers go in after tutor turns of the first two thirds of the dialogue.
    tutor_times = [m.at for m in messages[: max(2, 2 * len(messages) // 3)] if m.speaker == TUTOR]
    tutor_times = tutor_times or [messages[-1].at]
    for k, answer in enumerate(answers):
        at = tutor_times[min(k, len(tutor_times) - 1)] + _seconds(rng, 20, 60) * (k + 1)
        attempts.append(PlannedAttempt(answer, False, at))
    if solved:
        at = max([messages[-1].at, *(a.at for a in attempts)]) + _seconds(rng, 15, 45)
        attempts.append(PlannedAttempt(problem.record.final_answer, True, at))
    return attempts


def _session(
    student: DemoStudent,
    problem: DemoProblem,
    assignment: int,
    start: dt.datetime,
    rng: random.Random,
) -> PlannedSession:
    dialogue = rng.choice(problem.dialogues)
    solved = rng.random() < student.ability
    turns = len(dialogue.turns)
    keep = turns if solved else rng.randint(2, max(2, turns - 2))
    messages = _timed_messages(dialogue, keep, start, rng)
    attempts = _attempts(messages, problem, dialogue, solved, student.ability, rng)
    return PlannedSession(student.username, problem.qid, assignment, messages, attempts)


def _assignments(problems: list[DemoProblem], now: dt.datetime) -> list[PlannedAssignment]:
    planned = []
    for index, (title, due_days, instructions) in enumerate(ASSIGNMENTS):
        chosen = problems[index * PROBLEMS_PER_ASSIGNMENT : (index + 1) * PROBLEMS_PER_ASSIGNMENT]
        if not chosen:
            break
        due = (now + dt.timedelta(days=due_days)).replace(hour=21, minute=0, second=0)
        due = due.replace(microsecond=0)
        planned.append(
            PlannedAssignment(
                title=title,
                due_at=due,
                created_at=due - dt.timedelta(days=ASSIGNMENT_OPEN_DAYS),
                instructions=instructions,
                qids=[p.qid for p in chosen],
            )
        )
    return planned


def _sessions(
    students: list[DemoStudent],
    problems: dict[str, DemoProblem],
    assignments: list[PlannedAssignment],
    now: dt.datetime,
    rng: random.Random,
) -> list[PlannedSession]:
    sessions = []
    for student in students:
        for index, assignment in enumerate(assignments):
            upcoming = assignment.due_at > now
            for position, qid in enumerate(assignment.qids):
                # A demo login keeps the last problem of an upcoming assignment to try live.
                if upcoming and not student.simulated and position == len(assignment.qids) - 1:
                    continue
                chance = student.diligence * (0.5 if upcoming else 1.0)
                if rng.random() >= chance:
                    continue
                start = _start_time(rng, assignment.created_at, assignment.due_at, now)
                sessions.append(_session(student, problems[qid], index, start, rng))
    sessions.sort(key=lambda s: (s.created_at, s.student, s.qid))
    return sessions


def _resolution(at: dt.datetime, now: dt.datetime, rng: random.Random) -> dt.datetime | None:
    if now - at < dt.timedelta(days=RESOLVED_AFTER_DAYS):
        return None
    return min(at + _seconds(rng, 3600, 3 * 86400), now - dt.timedelta(hours=1))


def _leak_flags(
    sessions: list[PlannedSession],
    problems: dict[str, DemoProblem],
    now: dt.datetime,
    rng: random.Random,
) -> None:
    for session in sessions:
        answer = problems[session.qid].record.final_answer
        for index, message in enumerate(session.messages):
            if not message.leaked:
                continue
            at = message.at + _seconds(rng, 2, 10)
            detail = (
                f"The tutor stated {message.leaked!r}, the final answer ({answer}), "
                "before the student had it."
            )
            session.flags.append(
                PlannedFlag(
                    "answer_leak", "medium", "answer", detail, index, at, _resolution(at, now, rng)
                )
            )


def _blocked_replies(
    sessions: list[PlannedSession],
    problems: dict[str, DemoProblem],
    rng: random.Random,
) -> None:
    """A clean reply of a session on a problem whose other dialogues give the answer away
    becomes the guard's second attempt; the first, held back, is a real teacher turn of such a
    dialogue cut where it states the answer."""
    candidates = [
        s
        for s in sessions
        if problems[s.qid].mixed
        and len(s.messages) > 1
        and s.messages[1].speaker == TUTOR
        and not any(m.leaked for m in s.messages)
    ]
    for session in rng.sample(candidates, min(BLOCKED_SESSIONS, len(candidates))):
        problem = problems[session.qid]
        source = rng.choice([d for d in problem.dialogues if d.leaks_answer])
        index, (start, end) = source.leaks[0]
        text = _unnamed(source.turns[index].text[:end], source.persona)
        value = source.turns[index].text[start:end]
        message = session.messages[1]
        message.blocked_text, message.blocked_value = text, value
        detail = (
            f"The guard stopped 1 attempt(s) that gave away the final answer "
            f"({problem.record.final_answer}): {value!r}. The student did not see them."
        )
        at = message.at + dt.timedelta(seconds=2)
        session.flags.append(PlannedFlag("blocked_leak", "medium", "guard", detail, 1, at))


def _unsafe_message(sessions: list[PlannedSession], now: dt.datetime, rng: random.Random) -> None:
    """One recent student message says something a teacher must see; moderation flags it."""
    verdict = moderate(UNSAFE_TEXT)
    if not verdict.flagged:
        raise ValueError("the demo's unsafe message is no longer flagged by moderation")
    recent = [
        s
        for s in sessions
        if now - s.created_at < dt.timedelta(days=5)
        and len(s.messages) > 2
        and s.messages[2].speaker == STUDENT
        and s.student.startswith(USERNAME_PREFIX)
    ]
    if not recent:
        return
    session = rng.choice(recent)
    message = session.messages[2]
    message.text = f"{message.text}\n\n{UNSAFE_TEXT}"
    detail = f"Student message matched {verdict.matched!r} ({verdict.category})."
    at = message.at + dt.timedelta(seconds=1)
    session.flags.append(
        PlannedFlag("unsafe_content", str(verdict.severity), str(verdict.category), detail, 2, at)
    )


def _clamp(at: dt.datetime, now: dt.datetime) -> dt.datetime:
    return min(at, now - dt.timedelta(minutes=5))


def _score(base: int, rng: random.Random) -> int:
    return max(1, min(5, base + rng.choice((-1, 0, 0, 1))))


def _teacher_ratings(sessions: list[PlannedSession], now: dt.datetime, rng: random.Random) -> None:
    """The teacher has rated every tutor turn of some older sessions (those with a leak first:
    that is what a teacher reviews)."""
    older = [s for s in sessions if now - s.updated_at > dt.timedelta(days=2)]
    leaking = [s for s in older if any(m.leaked for m in s.messages)]
    others = [s for s in older if s not in leaking]
    chosen = leaking[: RATED_SESSIONS // 2]
    chosen += rng.sample(others, min(RATED_SESSIONS - len(chosen), len(others)))
    for session in chosen:
        when = _clamp(session.updated_at + _seconds(rng, 3600, 2 * 86400), now)
        for message in session.messages:
            if message.speaker != TUTOR:
                continue
            move = message.move or "generic"
            leaked = bool(message.leaked)
            message.rating = PlannedRating(
                helpful=_score(2 if leaked else 4, rng),
                no_answer_reveal=1 if leaked else _score(4, rng),
                correct=_score(4, rng),
                encourages_thinking=_score(_MOVE_THINKING.get(move, 3), rng),
                teacher_move=move,
                gave_away_answer=leaked,
                comment="Gave the answer away." if leaked else _RATING_COMMENTS.get(move, ""),
                at=when,
            )


def _thumbs(sessions: list[PlannedSession], now: dt.datetime, rng: random.Random) -> None:
    for session in sessions:
        for message in session.messages:
            if message.speaker != TUTOR or rng.random() >= STUDENT_RATING_SHARE:
                continue
            helpful = rng.random() < _HELPFUL_CHANCE.get(message.move, 0.6)
            reason = "" if helpful else rng.choice(_UNHELPFUL_REASONS)
            message.thumb = (helpful, reason, _clamp(message.at + _seconds(rng, 5, 40), now))


def plan_history(
    students: list[DemoStudent],
    problems: list[DemoProblem],
    now: dt.datetime,
    rng: random.Random,
) -> Plan:
    """The class's history up to ``now``. ``problems`` in assignment order (three per week);
    every choice comes from ``rng``, in a fixed order."""
    by_qid = {p.qid: p for p in problems}
    assignments = _assignments(problems, now)
    sessions = _sessions(students, by_qid, assignments, now, rng)
    _leak_flags(sessions, by_qid, now, rng)
    _blocked_replies(sessions, by_qid, rng)
    _unsafe_message(sessions, now, rng)
    _teacher_ratings(sessions, now, rng)
    _thumbs(sessions, now, rng)
    return Plan(
        created_at=now - dt.timedelta(days=CLASS_AGE_DAYS),
        instructions=CLASS_INSTRUCTIONS,
        students=students,
        assignments=assignments,
        sessions=sessions,
    )
