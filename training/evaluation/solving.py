"""The solving task: the tutor model solves held-out problems directly (greedy by default),
to see whether pedagogy training costs reasoning."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from inference.thinking import split_thinking
from pedagogy.grading import ais_correct
from training.rollout import ENDPOINT_ERRORS, ChatFn, EndpointConfig, RolloutProblem, derive_seed
from training.simulated_student import extract_final_answer

from .common import (
    ItemDone,
    TaskResult,
    bounded_map,
    first_completion,
    problem_source,
    record_failure,
)
from .metrics import bootstrap_ci

SOLVING_MAX_TOKENS = 512  # the tutor's own step-by-step solution (at least)

SOLVING_SYSTEM_PROMPT = (
    "You are a careful math solver. Solve the problem step by step. End with a last line of "
    "the form 'Final answer: X', where X is just the number."
)


def solving_messages(problem_text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SOLVING_SYSTEM_PROMPT},
        {"role": "user", "content": problem_text.strip()},
    ]


async def _solving_item(
    problem: RolloutProblem, solver: EndpointConfig, seed: int | None, chat: ChatFn
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": problem.problem_id,
        "source": problem_source(problem),
        "reference": problem.final_answer,
        "answer": None,
        "correct": None,
        "error": None,
        "error_kind": None,
    }
    try:
        completion = await first_completion(chat, solver, solving_messages(problem.text), seed=seed)
    except ENDPOINT_ERRORS as exc:
        return record_failure(record, exc)
    split = split_thinking(completion.text)
    answer = extract_final_answer(split.visible) or extract_final_answer(completion.text)
    record["answer"] = answer
    record["correct"] = await ais_correct(answer, problem.final_answer)
    record["finish_reason"] = completion.finish_reason
    return record


async def run_solving(
    problems: Sequence[RolloutProblem],
    tutor: EndpointConfig,
    *,
    seed: int | None,
    concurrency: int,
    chat: ChatFn,
    bootstrap_samples: int = 1000,
    bootstrap_seed: int = 0,
    done: ItemDone | None = None,
) -> TaskResult:
    clock = time.perf_counter()
    solver = replace(tutor, max_tokens=max(tutor.max_tokens, SOLVING_MAX_TOKENS))

    async def run_item(problem: RolloutProblem) -> dict[str, Any]:
        return await _solving_item(problem, solver, derive_seed(seed, problem.problem_id), chat)

    records = await bounded_map(run_item, problems, concurrency, done)
    ok = [rec for rec in records if not rec["error"]]
    result = TaskResult(name="solving", items=records, n=len(ok))
    result.metrics["accuracy"] = bootstrap_ci(
        [float(rec["correct"]) for rec in ok], samples=bootstrap_samples, seed=bootstrap_seed + 1
    )
    result.wall_s = time.perf_counter() - clock
    return result
