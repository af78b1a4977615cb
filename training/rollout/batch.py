"""A batch of rollouts (:func:`run_rollouts`): every problem rolled out ``group_size`` times (a
GRPO group), a bounded number at a time, each with its final solutions; and the default choice
of simulated student (:func:`default_student`)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from training.simulated_student import StudentProfile, generic_persona

from .chat import ChatFn, derive_seed, openai_chat
from .dialogue import final_solutions, run_dialogue
from .types import Dialogue, EndpointConfig, RolloutProblem

ProgressFn = Callable[[int, int, Dialogue], Any]
StudentChooser = Callable[[RolloutProblem, int], StudentProfile]


def default_student(problem: RolloutProblem, group: int) -> StudentProfile:
    """The problem's own student, else a generic persona fixed by the problem id."""
    return problem.student or generic_persona(problem.problem_id or group)


async def run_rollouts(
    problems: Sequence[RolloutProblem],
    tutor: EndpointConfig,
    student_model: EndpointConfig,
    *,
    max_turns: int = 4,
    k: int = 4,
    group_size: int = 1,
    concurrency: int = 8,
    seed: int | None = 0,
    choose_student: StudentChooser = default_student,
    progress: ProgressFn | None = None,
    final_max_tokens: int | None = None,
    chat: ChatFn = openai_chat,
    hidden_planning: bool = False,
    guard_retries: int | None = None,
    calculator: bool = False,
) -> list[Dialogue]:
    """Roll out every problem ``group_size`` times (a GRPO group shares the problem and the
    student; samples differ by seed), at most ``concurrency`` rollouts at a time, each with its
    ``k`` final solutions. Results come back in order (group-major). ``progress(done, total,
    dialogue)`` is called as each finishes; it may be a coroutine function."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    semaphore = asyncio.Semaphore(concurrency)
    total = len(problems) * group_size
    done = 0
    lock = asyncio.Lock()

    async def one(group: int, sample: int) -> Dialogue:
        nonlocal done
        problem = problems[group]
        async with semaphore:
            dialogue = await run_dialogue(
                problem,
                choose_student(problem, group),
                tutor,
                student_model,
                max_turns,
                derive_seed(seed, problem.problem_id, group, sample),
                chat=chat,
                group=group,
                sample=sample,
                hidden_planning=hidden_planning,
                guard_retries=guard_retries,
            )
            await final_solutions(
                dialogue, k, max_tokens=final_max_tokens, chat=chat, calculator=calculator
            )
        if progress is not None:
            async with lock:
                done += 1
                result = progress(done, total, dialogue)
                if inspect.isawaitable(result):
                    await result
        return dialogue

    tasks = [one(g, s) for g in range(len(problems)) for s in range(group_size)]
    return list(await asyncio.gather(*tasks))
