"""Measure and store how often the simulated student solves each bank problem alone.

The measuring is :func:`training.calibration.calibrate` (Django-free); this module feeds it the
active bank problems, as the retraining export turns them into rollout problems (same ids and
personas, so the rate is measured on the prompt training will use), and keeps one
:class:`~tutor.problems.models.ProblemCalibration` row per problem, student model, calculator
setting and ``k``. The export reads the rates back with :func:`stored_rates`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from training.calibration import Calibration, calibrate
from training.rollout import ChatFn, EndpointConfig, openai_chat

from .models import Problem, ProblemCalibration
from .rollouts import rollout_problem

# Longest stored answer and error text: model output, bounded before it reaches the database.
MAX_ANSWER_CHARS = 200
MAX_ERROR_CHARS = 500
# Problems measured between two writes to the database.
CHUNK = 8

ProgressFn = Callable[[int, int, Calibration], Any]


def problems_to_calibrate(limit: int | None = None) -> list[Problem]:
    """The active bank problems (no owner: starter and MathDial), oldest first."""
    problems = Problem.objects.active().bank().order_by("id")
    return list(problems[:limit] if limit is not None else problems)


def store(problem: Problem, result: Calibration, student_model: str) -> ProblemCalibration:
    """Insert or replace the row of ``result`` (a re-measurement overwrites the old one)."""
    row, _ = ProblemCalibration.objects.update_or_create(
        problem=problem,
        student_model=student_model,
        calculator=result.calculator,
        k=result.k,
        defaults={
            "solve_rate": result.solve_rate,
            "answers": [str(a)[:MAX_ANSWER_CHARS] for a in result.answers],
            "error": (result.error or "")[:MAX_ERROR_CHARS],
        },
    )
    return row


def calibrate_bank(
    student: EndpointConfig,
    *,
    k: int = 8,
    calculator: bool = False,
    limit: int | None = None,
    concurrency: int = 1,
    seed: int | None = 0,
    chat: ChatFn = openai_chat,
    progress: ProgressFn | None = None,
) -> list[ProblemCalibration]:
    """Calibrate the active bank problems against ``student`` and store a row for each
    (``student.model`` is the stored student name). Problems are measured in chunks and each
    chunk is stored before the next starts, so an interrupted run keeps what it measured (the
    ORM runs here, outside the event loop)."""

    problems = problems_to_calibrate(limit)
    chunk = max(CHUNK, concurrency)
    rows: list[ProblemCalibration] = []
    for start in range(0, len(problems), chunk):
        part = problems[start : start + chunk]
        results = asyncio.run(
            calibrate(
                [rollout_problem(p) for p in part],
                student,
                k=k,
                seed=seed,
                calculator=calculator,
                concurrency=concurrency,
                chat=chat,
            )
        )
        for problem, result in zip(part, results, strict=True):
            rows.append(store(problem, result, student.model))
            if progress is not None:
                progress(len(rows), len(problems), result)
    return rows


def stored_rates(
    problem_pks: Iterable[int], student_model: str, *, calculator: bool = False
) -> dict[int, float]:
    """The latest measured solve rate per problem (by primary key) for this student and
    calculator setting, whatever ``k``; problems never measured, or whose last measurement
    failed, are left out."""
    rows = (
        ProblemCalibration.objects.filter(
            problem_id__in=list(problem_pks),
            student_model=student_model,
            calculator=calculator,
            solve_rate__isnull=False,
        )
        .order_by("measured_at", "id")
        .values_list("problem_id", "solve_rate")
    )
    return {pk: float(rate) for pk, rate in rows if rate is not None}
