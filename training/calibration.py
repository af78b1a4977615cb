"""Problem calibration: how often the simulated student solves each problem before any dialogue.

GRPO learns only from groups whose rewards differ. A problem the student always solves alone,
or never solves even after good tutoring, gives every rollout of its group the same solve
score, so PedagogicalRL (Dinucu-Jianu et al., 2025) trains only on problems that the student
solves alone some of the time (1-60%). :func:`calibrate` measures that rate: ``k`` samples of
the student's own solution per problem, with the prompt the evaluation uses for the solve rate
before a dialogue (:func:`training.simulated_student.build_final_solution_messages` after the
student's templated opening message, the problem's own or a generic persona), graded with the
bounded checker of :mod:`pedagogy.grading`. :func:`band_sample` then draws training problems
from the informative band.

Plain Python over a :class:`~training.rollout.ChatFn`, so unit tests pass a fake model;
``python -m training.calibrate`` is the command line.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inference.prompts import Turn
from pedagogy.grading import ais_correct
from training.calculator import apply_calculator
from training.rollout import (
    ENDPOINT_ERRORS,
    ChatFn,
    EndpointConfig,
    RolloutProblem,
    default_student,
    derive_seed,
    failure_kind,
    openai_chat,
)
from training.simulated_student import (
    build_final_solution_messages,
    extract_final_answer,
    opening_message,
)

__all__ = [
    "BAND_HIGH",
    "BAND_LOW",
    "Calibration",
    "band_sample",
    "calibrate",
    "calibration_messages",
    "histogram",
    "in_band",
]

logger = logging.getLogger(__name__)

BAND_LOW = 0.01
BAND_HIGH = 0.60
# The solution length the evaluation allows the student (STUDENT_FINAL_MAX_TOKENS).
DEFAULT_MAX_TOKENS = 384
# Longest solution that is read for an answer at all; longer ones count as wrong.
MAX_SOLUTION_CHARS = 20_000

ProgressFn = Callable[[int, int, "Calibration"], Any]


@dataclass(frozen=True)
class Calibration:
    """One problem's measured solve rate. ``solve_rate`` is None when the endpoint failed
    (``error`` says why): such a problem is uncalibrated, not unsolvable."""

    problem_id: str
    solve_rate: float | None
    k: int
    answers: tuple[str, ...] = ()
    solved: tuple[bool, ...] = ()
    calculator: bool = False
    error: str | None = None
    error_kind: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "problem_id": self.problem_id,
            "solve_rate": self.solve_rate,
            "k": self.k,
            "answers": list(self.answers),
            "solved": list(self.solved),
            "calculator": self.calculator,
        }
        if self.error:
            data["error"] = self.error
            data["error_kind"] = self.error_kind
        data.update(self.extra)
        return data


def in_band(rate: float | None, low: float = BAND_LOW, high: float = BAND_HIGH) -> bool:
    """Whether a solve rate lies in the informative band ``[low, high]`` (None: uncalibrated,
    never in band). With k = 8 the default band holds 1 to 4 solves of 8."""
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError("the band needs 0 <= low <= high <= 1")
    return rate is not None and low <= rate <= high


def calibration_messages(problem: RolloutProblem, *, calculator: bool = False) -> list[dict]:
    """The prompt of the student's solution before any dialogue: the evaluation's (its
    ``before`` samples), so a calibrated rate and a measured solve gain start from the same
    place."""
    student = default_student(problem, 0)
    opening = [Turn(role="student", text=opening_message(student))]
    return build_final_solution_messages(problem.text, student, opening, calculator=calculator)


async def _grade(solution: str, reference: str, calculator: bool) -> tuple[str, bool]:
    if len(solution) > MAX_SOLUTION_CHARS:
        return "", False
    if calculator:
        solution = apply_calculator(solution)
    answer = extract_final_answer(solution)
    return answer, await ais_correct(answer, reference)


async def calibrate_problem(
    problem: RolloutProblem,
    student: EndpointConfig,
    *,
    k: int = 8,
    seed: int | None = 0,
    calculator: bool = False,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    chat: ChatFn = openai_chat,
) -> Calibration:
    """``k`` samples (one request with ``n=k``) of one problem, graded. A missing sample counts
    as wrong, as in :func:`training.rewards.solve_score`; an endpoint failure gives a result
    with ``error`` set and no rate."""
    try:
        completions = await chat(
            student,
            calibration_messages(problem, calculator=calculator),
            seed=derive_seed(seed, "calibrate", problem.problem_id),
            n=k,
            max_tokens=max_tokens,
        )
    except ENDPOINT_ERRORS as exc:
        return Calibration(
            problem_id=problem.problem_id,
            solve_rate=None,
            k=k,
            calculator=calculator,
            error=f"{type(exc).__name__}: {exc}",
            error_kind=failure_kind(exc),
        )
    graded = [await _grade(c.text, problem.final_answer, calculator) for c in list(completions)[:k]]
    solved = tuple(ok for _, ok in graded)
    return Calibration(
        problem_id=problem.problem_id,
        solve_rate=sum(solved) / k,
        k=k,
        answers=tuple(answer for answer, _ in graded),
        solved=solved,
        calculator=calculator,
    )


async def calibrate(
    problems: Sequence[RolloutProblem],
    student: EndpointConfig,
    *,
    k: int = 8,
    seed: int | None = 0,
    calculator: bool = False,
    concurrency: int = 4,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    chat: ChatFn = openai_chat,
    progress: ProgressFn | None = None,
) -> list[Calibration]:
    """Calibrate every problem, at most ``concurrency`` requests in flight; results come back
    in the problems' order. ``progress(done, total, result)`` is called as each finishes (it
    may be a coroutine function). Samples are seeded per problem from ``seed`` (when the
    endpoint sends seeds: ``EndpointConfig.send_seed``)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    semaphore = asyncio.Semaphore(concurrency)
    lock = asyncio.Lock()
    done = 0

    async def one(problem: RolloutProblem) -> Calibration:
        nonlocal done
        async with semaphore:
            result = await calibrate_problem(
                problem,
                student,
                k=k,
                seed=seed,
                calculator=calculator,
                max_tokens=max_tokens,
                chat=chat,
            )
        if progress is not None:
            async with lock:
                done += 1
                outcome = progress(done, len(problems), result)
                if inspect.isawaitable(outcome):
                    await outcome
        return result

    return list(await asyncio.gather(*(one(p) for p in problems)))


def band_sample(
    problems: Sequence[RolloutProblem],
    rates: Mapping[str, float | None],
    n: int,
    rng: random.Random,
    *,
    low: float = BAND_LOW,
    high: float = BAND_HIGH,
) -> list[RolloutProblem]:
    """``n`` distinct problems for training, from the informative band first.

    In-band problems are drawn uniformly without replacement. When fewer than ``n`` are in
    band, all of them are taken and the rest is filled with the out-of-band problems whose
    rate lies nearest the band (by distance to its nearer edge, ties in random order: with the
    default band a problem never solved alone comes before one solved 5 times of 8, for a weak
    student the likelier to be moved by a dialogue), and only then with uncalibrated problems
    (no rate): a batch is never cut short while problems are left, and a warning says how many
    came from outside the band. When there are fewer than ``n`` problems in all, all of them
    come back."""
    if n < 0:
        raise ValueError("n must not be negative")
    band, outside, unknown = [], [], []
    for problem in problems:
        rate = rates.get(problem.problem_id)
        if rate is None:
            unknown.append(problem)
        elif in_band(rate, low, high):
            band.append(problem)
        else:
            outside.append(problem)
    if len(band) >= n:
        return rng.sample(band, n)
    chosen = rng.sample(band, len(band))

    def distance(problem: RolloutProblem) -> float:
        rate = rates[problem.problem_id] or 0.0
        return low - rate if rate < low else rate - high

    ties = {id(p): rng.random() for p in outside}
    outside.sort(key=lambda p: (distance(p), ties[id(p)]))
    chosen += outside[: n - len(chosen)]
    chosen += rng.sample(unknown, min(len(unknown), n - len(chosen)))
    if len(chosen) > len(band):
        logger.warning(
            "only %d of %d problems drawn are in the band %.0f%%-%.0f%%; the rest are the "
            "nearest outside it",
            len(band),
            len(chosen),
            100 * low,
            100 * high,
        )
    return chosen


def histogram(rates: Sequence[float | None], k: int) -> dict[int, int]:
    """How many problems were solved 0, 1, ..., k times of k (uncalibrated ones left out)."""
    counts = dict.fromkeys(range(k + 1), 0)
    for rate in rates:
        if rate is not None:
            counts[round(rate * k)] += 1
    return counts
