"""The interactive task: the tutor talks with a simulated student (:mod:`training.rollout`)
for up to ``max_turns`` tutor turns. The student writes ``k`` solutions before any tutoring
(the dialogue's templated opening only) and ``k`` after it, from the same prompt form
(:func:`training.simulated_student.build_final_solution_messages`), so the gain measures the
tutoring and nothing else. The tutor turns may also be scored by the reward model and judged
by an LLM judge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

from inference.judge import LEAK, PEDAGOGY, JudgeConfig, JudgeError, Verdict, ajudge_turn
from inference.prompts import Turn
from pedagogy.grading import is_correct
from training.rollout import (
    ENDPOINT_ERRORS,
    ChatFn,
    Dialogue,
    EndpointConfig,
    RolloutProblem,
    default_student,
    derive_seed,
    failure_kind,
    final_solutions,
    run_dialogue,
)
from training.simulated_student import (
    StudentProfile,
    build_final_solution_messages,
    extract_final_answer,
    opening_message,
)

from .common import (
    ItemDone,
    Scorer,
    TaskResult,
    bounded_map,
    error_text,
    problem_source,
    score_many,
)
from .metrics import DialogueOutcome, dialogue_outcome, interactive_metrics

# Fixed decoding of the simulated student (the tutor's is in EvaluationConfig).
STUDENT_TEMPERATURE = 0.7  # k samples per item must differ to estimate a solve rate
STUDENT_MAX_TOKENS = 160  # a student turn in the dialogue
STUDENT_FINAL_MAX_TOKENS = 384  # a student's full solution (before and after)

ItemResult = tuple[DialogueOutcome, Dialogue | None]

_Value = TypeVar("_Value")


def _first_attempt_correct(problem: RolloutProblem, student: StudentProfile) -> bool | None:
    if not student.incorrect_solution:
        return None
    answer = extract_final_answer(student.incorrect_solution)
    return is_correct(answer, problem.final_answer)


async def _interactive_item(
    problem: RolloutProblem,
    tutor: EndpointConfig,
    student_model: EndpointConfig,
    *,
    max_turns: int,
    k: int,
    seed: int | None,
    chat: ChatFn,
    transcript: bool,
    guard_retries: int | None = None,
) -> ItemResult:
    student = default_student(problem, 0)
    source = problem_source(problem)
    first_attempt = _first_attempt_correct(problem, student)
    opening = [Turn(role="student", text=opening_message(student))]
    messages = build_final_solution_messages(problem.text, student, opening)
    try:
        before = await chat(
            student_model,
            messages,
            seed=derive_seed(seed, "before"),
            n=k,
            max_tokens=STUDENT_FINAL_MAX_TOKENS,
        )
    except ENDPOINT_ERRORS as exc:
        outcome = DialogueOutcome(
            item_id=problem.problem_id,
            source=source,
            first_attempt_correct=first_attempt,
            error=f"solutions before: {error_text(exc)}",
            error_kind=failure_kind(exc),
        )
        return outcome, None
    dialogue = await run_dialogue(
        problem,
        student,
        tutor,
        student_model,
        max_turns,
        seed,
        chat=chat,
        guard_retries=guard_retries,
    )
    await final_solutions(dialogue, k, max_tokens=STUDENT_FINAL_MAX_TOKENS, chat=chat)
    outcome = dialogue_outcome(
        dialogue,
        [c.text for c in before],
        k,
        item_id=problem.problem_id,
        source=source,
        first_attempt_correct=first_attempt,
        transcript=transcript,
    )
    return outcome, dialogue


async def run_interactive(
    problems: Sequence[RolloutProblem],
    tutor: EndpointConfig,
    student_model: EndpointConfig,
    *,
    max_turns: int,
    k: int,
    seed: int | None,
    concurrency: int,
    chat: ChatFn,
    scorer: Scorer | None = None,
    bootstrap_samples: int = 1000,
    bootstrap_seed: int = 0,
    transcripts: bool = False,
    done: ItemDone | None = None,
    judge: JudgeConfig | None = None,
    guard_retries: int | None = None,
) -> TaskResult:
    clock = time.perf_counter()

    async def run_item(problem: RolloutProblem) -> ItemResult:
        return await _interactive_item(
            problem,
            tutor,
            student_model,
            max_turns=max_turns,
            k=k,
            seed=derive_seed(seed, problem.problem_id),
            chat=chat,
            transcript=transcripts,
            guard_retries=guard_retries,
        )

    results = await bounded_map(run_item, problems, concurrency, done)
    result = TaskResult(name="interactive")
    if scorer is not None:
        _score_dialogues(results, scorer)
    if judge is not None:
        await judge_dialogues(results, judge, concurrency)
    outcomes = [outcome for outcome, _ in results]
    result.items = [o.to_dict() for o in outcomes]
    result.n = sum(1 for o in outcomes if o.error is None)
    result.metrics = interactive_metrics(outcomes, samples=bootstrap_samples, seed=bootstrap_seed)
    result.wall_s = time.perf_counter() - clock
    return result


def _measured(results: Sequence[ItemResult]) -> Iterator[tuple[int, DialogueOutcome, Dialogue]]:
    """The items whose dialogue ran, with their index in ``results``."""
    for index, (outcome, dialogue) in enumerate(results):
        if outcome.error is None and dialogue is not None:
            yield index, outcome, dialogue


def _tutor_turns(dialogue: Dialogue) -> Iterator[tuple[list[Turn], str]]:
    """Each tutor turn of ``dialogue``: the visible history before it, and its text."""
    history = dialogue.history()
    for position, turn in enumerate(dialogue.turns):
        if turn.role == "tutor":
            yield history[:position], turn.text


def _by_owner(owners: Sequence[int], values: Sequence[_Value]) -> dict[int, list[_Value]]:
    """``values`` grouped by the index of the item each belongs to."""
    grouped: dict[int, list[_Value]] = {}
    for owner, value in zip(owners, values, strict=True):
        grouped.setdefault(owner, []).append(value)
    return grouped


def _score_dialogues(results: Sequence[ItemResult], scorer: Scorer) -> None:
    """Set each measured outcome's ``rm_score``: the mean pedagogy score of its dialogue's
    tutor turns, each in its own context."""
    triples, owners = [], []
    for index, _, dialogue in _measured(results):
        for before, text in _tutor_turns(dialogue):
            triples.append((dialogue.problem.text, before, text))
            owners.append(index)
    for index, values in _by_owner(owners, score_many(scorer, triples)).items():
        results[index][0].rm_score = round(sum(values) / len(values), 6)


async def judge_dialogues(
    results: Sequence[ItemResult],
    judge: JudgeConfig,
    concurrency: int,
) -> None:
    """Ask the LLM judge about every tutor turn of the dialogues that did not fail, and set
    each outcome's ``judge_leaked``, ``judge_pedagogy_passed`` and ``judge_errors``. A rule
    fails a dialogue when it fails any of its turns; a dialogue with a turn the judge could not
    answer for, and none that failed, has no verdict on that rule (None)."""
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(
        problem: RolloutProblem, before: list[Turn], reply: str
    ) -> dict[str, Verdict | JudgeError]:
        async with semaphore:
            return await ajudge_turn(
                judge,
                problem=problem.text,
                final_answer=problem.final_answer,
                history=before,
                reply=reply,
            )

    calls, owners = [], []
    for index, outcome, dialogue in _measured(results):
        outcome.judge_errors = 0
        for before, text in _tutor_turns(dialogue):
            calls.append(one(dialogue.problem, before, text))
            owners.append(index)
    verdicts = await asyncio.gather(*calls)
    for index, turns in _by_owner(owners, verdicts).items():
        outcome = results[index][0]
        outcome.judge_errors = sum(
            1 for t in turns for v in t.values() if isinstance(v, JudgeError)
        )
        outcome.judge_leaked = _dialogue_verdict(turns, LEAK, failing=True)
        outcome.judge_pedagogy_passed = _dialogue_verdict(turns, PEDAGOGY, failing=False)


def _dialogue_verdict(
    turns: Sequence[dict[str, Verdict | JudgeError]], rule: str, *, failing: bool
) -> bool | None:
    """Over a dialogue's turns: ``failing`` when any turn failed ``rule``, ``not failing``
    when every turn passed it, None when some turn got no verdict and none failed."""
    verdicts = [t.get(rule) for t in turns]
    if any(isinstance(v, Verdict) and not v.passed for v in verdicts):
        return failing
    if all(isinstance(v, Verdict) for v in verdicts):
        return not failing
    return None
