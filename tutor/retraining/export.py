"""Export a job's data window to its dataset file (``training.dataset``): the logged problems,
teacher ratings and session outcomes of the chosen classes and dates.

- one ``problem`` line per distinct problem attempted in the window (category: its first
  skill, else "general"; instructions: the class's and assignment's pedagogy instructions of
  its sessions; a MathDial problem keeps its real student persona; ``solve_rate``: the job's
  student's stored calibration, ``manage.py calibrate_problems``, when measured), topped up
  from the problem bank when asked and the window is small. MathDial problems of the held-out
  split (``training.dataset.is_heldout``, what evaluation measures on) are never trained on;
- one ``rating`` record per teacher rating of a tutor turn (rubric scores, teacher move, the
  turn's text and the visible dialogue before it);
- one ``student_rating`` record per student's thumbs up or down on a tutor turn (``helpful``,
  the optional reason as typed, the automatic leak check's verdict, the turn and the dialogue
  before it);
- one ``outcome`` record per session (outcome, answer attempts, tutor turns, leaks);
- one ``blocked`` record per reply attempt the answer guard stopped (its text, why, and the
  visible dialogue before it): negative examples the student never saw.

Anonymised: people appear only as opaque ids (an HMAC keyed with the site's secret and the
job), never usernames, names, or teachers' comments. What students typed is kept as typed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet

from training.calibration import BAND_HIGH, BAND_LOW
from training.dataset import write_dataset
from training.rollout import RolloutProblem
from tutor.dialogues.models import Message, ReplyRating, TutoringSession
from tutor.problems.calibrations import stored_rates
from tutor.problems.models import Problem
from tutor.problems.rollouts import held_out, rollout_problem
from tutor.reviews.models import TurnRating

SCHEMA = "tutor.retraining-dataset.v1"


def anonymise(scope: str, kind: str, user_id: int) -> str:
    key = f"{settings.SECRET_KEY}:retraining:{scope}".encode()
    digest = hmac.new(key, f"{kind}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"{kind[0]}_{digest[:20]}"


def window_sessions(
    classroom_ids=(), date_from: date | None = None, date_to: date | None = None
) -> QuerySet[TutoringSession]:
    """Sessions in the window: of these classes (none given: every session, free practice
    included), started between the dates (inclusive)."""
    sessions = TutoringSession.objects.all()
    classroom_ids = list(classroom_ids or ())
    if classroom_ids:
        sessions = sessions.filter(classroom_id__in=classroom_ids)
    if date_from is not None:
        sessions = sessions.filter(created_at__date__gte=date_from)
    if date_to is not None:
        sessions = sessions.filter(created_at__date__lte=date_to)
    return sessions


def count_window_problems(classroom_ids=(), date_from=None, date_to=None) -> int:
    return (
        window_sessions(classroom_ids, date_from, date_to).values("problem_id").distinct().count()
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def heldout_bank_problems() -> list[RolloutProblem]:
    """Our own (not MathDial) active problems of the held-out split: evaluation mixes them
    with MathDial's held-out problems."""
    # The public bank only: a teacher's unshared problems stay out of evaluation.
    bank = Problem.objects.free_practice().exclude(source=Problem.Source.MATHDIAL)
    return [rollout_problem(p) for p in bank.order_by("id") if held_out(p)]


@dataclass
class ExportResult:
    problems: list[RolloutProblem] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    solve_rates: dict[str, float] = field(default_factory=dict)  # by rollout problem id


def band_counts(
    rates: list[float | None], low: float = BAND_LOW, high: float = BAND_HIGH
) -> dict[str, int]:
    """How many problems' calibrated rates lie in the band, below it, above it, or are
    unknown: the distribution the job page shows."""
    counts = {"in_band": 0, "below": 0, "above": 0, "uncalibrated": 0}
    for rate in rates:
        if rate is None:
            counts["uncalibrated"] += 1
        elif rate < low:
            counts["below"] += 1
        elif rate > high:
            counts["above"] += 1
        else:
            counts["in_band"] += 1
    return counts


def build_dataset(
    *,
    scope: str,
    classroom_ids=(),
    date_from: date | None = None,
    date_to: date | None = None,
    include_problem_bank: bool = False,
    min_problems: int = 0,
    student_model: str | None = None,
    calculator: bool = False,
    band: tuple[float, float] = (BAND_LOW, BAND_HIGH),
) -> ExportResult:
    """Problems and records of the window. ``scope`` keys the anonymous ids (a job's id).
    With ``student_model``, each problem carries that student's stored solve rate (with or
    without the calculator) and the stats count them against ``band`` (``calibration_in_band``,
    ``_below``, ``_above``, ``_uncalibrated``)."""
    sessions = (
        window_sessions(classroom_ids, date_from, date_to)
        .select_related("problem", "classroom", "assignment")
        .prefetch_related(
            "attempts",
            Prefetch(
                "messages",
                queryset=Message.objects.order_by("created_at", "id").prefetch_related(
                    Prefetch("ratings", queryset=TurnRating.objects.order_by("created_at", "id")),
                    Prefetch(
                        "student_ratings",
                        queryset=ReplyRating.objects.order_by("created_at", "id"),
                    ),
                    "blocked_replies",
                ),
            ),
        )
        .order_by("created_at", "id")
    )
    result = ExportResult()
    problems: dict[int, Problem] = {}
    instructions: dict[int, list[str]] = defaultdict(list)
    sessions_count = 0
    for session in sessions.iterator(chunk_size=200):
        sessions_count += 1
        problem = session.problem
        problems.setdefault(problem.pk, problem)
        texts = _lines(session.classroom.pedagogy_instructions if session.classroom else "")
        texts += _lines(session.assignment.pedagogy_instructions if session.assignment else "")
        for text in texts:
            if text not in instructions[problem.pk]:
                instructions[problem.pk].append(text)
        result.records += _session_records(session, scope)
    withheld = 0
    exported: list[int] = []  # primary keys, in the order of result.problems
    for problem in problems.values():
        if held_out(problem):
            withheld += 1
            continue
        result.problems.append(rollout_problem(problem, instructions[problem.pk]))
        exported.append(problem.pk)
    from_bank = 0
    if include_problem_bank and len(result.problems) < min_problems:
        bank = Problem.objects.free_practice().exclude(pk__in=list(problems)).order_by("id")
        for problem in bank.iterator(chunk_size=200):
            if len(result.problems) >= min_problems:
                break
            if held_out(problem):
                continue
            result.problems.append(rollout_problem(problem))
            exported.append(problem.pk)
            from_bank += 1
    rates = stored_rates(exported, student_model, calculator=calculator) if student_model else {}
    result.solve_rates = {
        rp.problem_id: rates[pk]
        for rp, pk in zip(result.problems, exported, strict=True)
        if pk in rates
    }
    # Without a student model there is no calibration to count (and no keys on the page).
    calibration = band_counts([rates.get(pk) for pk in exported], *band) if student_model else {}
    result.stats = {
        "sessions": sessions_count,
        "problems": len(result.problems),
        "problems_from_logs": len(problems) - withheld,
        "problems_from_bank": from_bank,
        "problems_held_out": withheld,
        "ratings": sum(1 for r in result.records if r["kind"] == "rating"),
        "outcomes": sum(1 for r in result.records if r["kind"] == "outcome"),
        "blocked": sum(1 for r in result.records if r["kind"] == "blocked"),
        **{f"calibration_{name}": count for name, count in calibration.items()},
    }
    return result


def _session_records(session: TutoringSession, scope: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    problem_id = f"problem-{session.problem_id}"
    session_ref = anonymise(scope, "dialogue", session.pk)
    history: list[dict[str, str]] = []
    tutor_turns = 0
    leaks = 0
    for message in session.messages.all():
        if message.role == Message.Role.TUTOR:
            tutor_turns += 1
            leaks += bool(message.leaked_answer)
            for blocked in message.blocked_replies.all():
                # What the answer guard stopped: a negative example (the model wrote it, the
                # student never saw it).
                records.append(
                    {
                        "kind": "blocked",
                        "schema": SCHEMA,
                        "problem_id": problem_id,
                        "problem_text": session.problem.text,
                        "dialogue": session_ref,
                        "turn": tutor_turns,
                        "attempt": blocked.attempt,
                        "reason": blocked.reason,
                        "detail": blocked.detail,
                        "tutor_text": blocked.text,
                        # what the student was shown instead: the preferred side of the
                        # reward model's pair (training.reward_model.pairs.blocked_pairs)
                        "shown_text": message.text,
                        "history": list(history),
                        "model_name": message.model_name,
                    }
                )
            for rating in message.ratings.all():
                records.append(
                    {
                        "kind": "rating",
                        "schema": SCHEMA,
                        "problem_id": problem_id,
                        "problem_text": session.problem.text,
                        "dialogue": session_ref,
                        "turn": tutor_turns,
                        "rater": anonymise(scope, "rater", rating.rater_id),
                        "helpful": rating.helpful,
                        "no_answer_reveal": rating.no_answer_reveal,
                        "correct": rating.correct,
                        "encourages_thinking": rating.encourages_thinking,
                        "teacher_move": rating.teacher_move,
                        "gave_away_answer": rating.gave_away_answer,
                        "tutor_text": message.text,
                        "history": list(history),
                        "model_name": message.model_name,
                    }
                )
            for student_rating in message.student_ratings.all():
                records.append(
                    {
                        "kind": "student_rating",
                        "schema": SCHEMA,
                        "problem_id": problem_id,
                        "problem_text": session.problem.text,
                        "dialogue": session_ref,
                        "turn": tutor_turns,
                        "student": anonymise(scope, "student", student_rating.student_id),
                        "helpful": student_rating.helpful,
                        "reason": student_rating.reason,
                        "leaked_answer": message.leaked_answer,
                        "tutor_text": message.text,
                        "history": list(history),
                        "model_name": message.model_name,
                    }
                )
        if message.text:
            history.append({"role": message.role, "text": message.text})
    attempts = list(session.attempts.all())
    records.append(
        {
            "kind": "outcome",
            "schema": SCHEMA,
            "problem_id": problem_id,
            "dialogue": session_ref,
            "student": anonymise(scope, "student", session.student_id),
            "outcome": session.outcome,
            "status": session.status,
            "solved": session.outcome == TutoringSession.Outcome.SOLVED,
            "attempts": len(attempts),
            "correct_attempts": sum(1 for a in attempts if a.correct),
            "tutor_turns": tutor_turns,
            "student_turns": sum(1 for m in history if m["role"] == Message.Role.STUDENT),
            "leaked_turns": leaks,
            "model_name": session.model_name,
        }
    )
    return records


def export_job_dataset(job, path) -> dict[str, int]:
    """Write ``job``'s window to ``path``; returns the counts."""
    min_problems = max(
        settings.TUTOR_TRAINING_MIN_PROBLEMS, int(job.config.get("problems_per_step") or 0)
    )
    result = build_dataset(
        scope=f"job-{job.pk}",
        classroom_ids=list(job.classrooms.values_list("pk", flat=True)),
        date_from=job.date_from,
        date_to=job.date_to,
        include_problem_bank=job.include_problem_bank,
        min_problems=min_problems,
        student_model=job.config.get("student_model") or None,
        calculator=bool(job.config.get("calculator")),
        band=(
            float(job.config.get("band_low", BAND_LOW)),
            float(job.config.get("band_high", BAND_HIGH)),
        ),
    )
    if not result.problems:
        raise ValueError(
            "the data window holds no problem to train on: widen it (classes, dates) or "
            "include the problem bank"
        )
    write_dataset(path, result.problems, result.records, solve_rates=result.solve_rates)
    return result.stats
