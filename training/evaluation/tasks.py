"""The three evaluation tasks: their data, prompts, fixed decoding and per-item runs.

- **interactive**: the tutor talks with a simulated student (:mod:`training.rollout`) for up
  to ``max_turns`` tutor turns; the student writes ``k`` solutions before any tutoring (the
  dialogue's templated opening only) and ``k`` after it, from the same prompt form
  (:func:`training.simulated_student.build_final_solution_messages`), so the gain measures
  the tutoring and nothing else.
- **scaffolding**: MathTutorBench's scaffolding-generation setting. Every
  ``dialog_history`` in the bridge files ends with a human teacher turn; the context is the
  history without that turn, the tutor writes its own turn for that context, and the pedagogy
  reward model compares the two in the same context.
- **solving**: the tutor model solves held-out problems directly (greedy by default), to see
  whether pedagogy training costs reasoning.

Items are chosen in a fixed order that does not depend on the run's seed: MathDial rows and
bridge dialogues are sorted by a hash of their id salted with the task name, and ``limit``
takes a prefix, so a smaller run is a subset of a larger one and two model versions evaluated
with the same limit see the same items. The bank's own problems (``extra_problems``) are
interleaved with the MathDial ones (bank, MathDial, bank, ...) in the order given.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from inference.judge import LEAK, PEDAGOGY, JudgeConfig, JudgeError, Verdict, ajudge_turn
from inference.prompts import ProblemContext, Turn, build_tutor_messages
from inference.thinking import split_thinking
from pedagogy.grading import ais_correct, is_correct
from pedagogy.judges import areveals_answer
from training.data.mathtutorbench import read_mathtutorbench
from training.dataset import mathdial_problems
from training.rollout import (
    ENDPOINT_ERRORS,
    INFRA_KINDS,
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

from .metrics import (
    DialogueOutcome,
    Metric,
    bootstrap_ci,
    dialogue_outcome,
    interactive_metrics,
    win_value,
)

TASKS = ("interactive", "scaffolding", "solving")

# Fixed decoding, apart from the tutor's own temperature and max_tokens (EvaluationConfig).
STUDENT_TEMPERATURE = 0.7  # k samples per item must differ to estimate a solve rate
STUDENT_MAX_TOKENS = 160  # a student turn in the dialogue
STUDENT_FINAL_MAX_TOKENS = 384  # a student's full solution (before and after)
SOLVING_MAX_TOKENS = 512  # the tutor's own step-by-step solution

SOLVING_SYSTEM_PROMPT = (
    "You are a careful math solver. Solve the problem step by step. End with a last line of "
    "the form 'Final answer: X', where X is just the number."
)

ItemDone = Callable[[], None]


class Scorer(Protocol):
    """The pedagogy score of a candidate tutor ``turn`` after ``history`` on ``problem``
    (higher is more pedagogical; only differences within a context mean anything). An object
    may also offer ``score_batch(triples) -> list[float]``, which is used when present."""

    def __call__(self, problem: str, history: Sequence[Any], turn: str) -> float: ...


class RewardModelScorer:
    """:class:`training.reward_model.model.RewardModel` as a :class:`Scorer` (loaded lazily
    here so that a run without a reward model never imports torch)."""

    def __init__(self, path: str | Path, batch_size: int = 32):
        from training.reward_model.model import RewardModel

        self.model = RewardModel.load(path)
        self.batch_size = batch_size

    def __call__(self, problem: str, history: Sequence[Any], turn: str) -> float:
        return self.model.score(problem, history, turn)

    def score_batch(self, triples: Sequence[tuple[str, Sequence[Any], str]]) -> list[float]:
        return self.model.score_batch(list(triples), batch_size=self.batch_size)


def score_many(scorer: Scorer, triples: Sequence[tuple[str, Sequence[Any], str]]) -> list[float]:
    if not triples:
        return []
    batch = getattr(scorer, "score_batch", None)
    if callable(batch):
        return [float(s) for s in batch(list(triples))]
    return [float(scorer(p, h, t)) for p, h, t in triples]


@dataclass
class TaskResult:
    """One task's outcome: ``n`` counts the items that did not fail."""

    name: str
    n: int = 0
    wall_s: float = 0.0
    metrics: dict[str, Metric] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "n": self.n,
            "attempted": len(self.items),
            "failed": sum(1 for item in self.items if item.get("error")),
            "infra_failed": sum(1 for item in self.items if item.get("error_kind") in INFRA_KINDS),
            "wall_s": round(self.wall_s, 3),
            "metrics": self.metrics,
            "items": self.items,
        }
        if self.error:
            data["error"] = self.error
        if self.notes:
            data["notes"] = self.notes
        return data


# -- item selection ---------------------------------------------------------------------------
def stable_order(keys: Iterable[str], salt: str) -> list[int]:
    """Indices of ``keys`` sorted by a salted hash: a fixed pseudo-random order."""
    keyed = [
        (hashlib.sha256(f"{salt}:{key}".encode()).hexdigest(), index)
        for index, key in enumerate(keys)
    ]
    return [index for _, index in sorted(keyed)]


def select_problems(
    mathdial: Sequence[RolloutProblem],
    extra: Sequence[RolloutProblem],
    limit: int,
    salt: str,
) -> list[RolloutProblem]:
    """``limit`` problems: the bank's (in their order) interleaved with MathDial's (in the
    task's fixed order)."""
    ordered = [mathdial[i] for i in stable_order((p.problem_id for p in mathdial), salt)]
    chosen: list[RolloutProblem] = []
    a, b = list(extra), ordered
    i = j = 0
    while len(chosen) < limit and (i < len(a) or j < len(b)):
        if i < len(a) and (len(chosen) % 2 == 0 or j >= len(b)):
            chosen.append(a[i])
            i += 1
        else:
            chosen.append(b[j])
            j += 1
    return chosen


def load_mathdial_problems(path: str | Path) -> list[RolloutProblem]:
    """The held-out split only (:func:`training.dataset.is_heldout`): training jobs run from
    the command line draw from the other split, so evaluation never sees a trained problem."""
    return mathdial_problems(path, split="heldout")


@dataclass(frozen=True)
class ScaffoldingItem:
    """A bridge dialogue cut before its last (human teacher) turn."""

    item_id: str
    source: str
    problem: str
    topic: str
    solution: str
    final_answer: str
    context: tuple[Turn, ...]
    reference: str

    @property
    def has_problem(self) -> bool:
        return bool(self.problem and self.final_answer)

    def problem_context(self) -> ProblemContext:
        text = self.problem or f"(The problem text is not available. Topic: {self.topic}.)"
        return ProblemContext(
            text=text, final_answer=self.final_answer or "(not given)", solution=self.solution
        )

    def rm_problem(self) -> str:
        return self.problem or self.topic


def load_scaffolding_items(paths: Sequence[str | Path], limit: int) -> list[ScaffoldingItem]:
    """``limit`` items over all ``paths`` in a fixed order. Empty turns are dropped; items
    whose history does not end with a teacher turn, or has no student turn before it, are
    skipped (there is nothing to compare with, or nothing to respond to)."""
    items: list[ScaffoldingItem] = []
    for path in paths:
        path = Path(path)
        for index, item in enumerate(read_mathtutorbench(path)):
            turns = [t for t in item.history if t.text.strip()]
            if not turns or turns[-1].speaker != "teacher":
                continue
            context = tuple(
                Turn(role="tutor" if t.speaker == "teacher" else "student", text=t.text)
                for t in turns[:-1]
            )
            if not any(t.role == "student" for t in context):
                continue
            lines = [line for line in item.reference_solution.splitlines() if line.strip()]
            solution = "\n".join(lines[:-1]).strip() if item.final_answer else ""
            items.append(
                ScaffoldingItem(
                    item_id=f"{path.stem}:{index}",
                    source=path.stem,
                    problem=item.problem,
                    topic=item.topic,
                    solution=solution,
                    final_answer=item.final_answer,
                    context=context,
                    reference=turns[-1].text,
                )
            )
    order = stable_order((item.item_id for item in items), "scaffolding")
    return [items[i] for i in order[:limit]]


# -- running ----------------------------------------------------------------------------------
async def _bounded(
    factories: Sequence[Callable[[], Awaitable[Any]]], concurrency: int, done: ItemDone | None
) -> list[Any]:
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            result = await factory()
        if done is not None:
            done()
        return result

    return list(await asyncio.gather(*(one(f) for f in factories)))


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


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
) -> tuple[DialogueOutcome, Dialogue | None]:
    student = default_student(problem, 0)
    source = "mathdial" if problem.problem_id.startswith("mathdial:") else "bank"
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
            error=f"solutions before: {_error(exc)}",
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
    factories = [
        lambda p=p: _interactive_item(
            p,
            tutor,
            student_model,
            max_turns=max_turns,
            k=k,
            seed=derive_seed(seed, p.problem_id),
            chat=chat,
            transcript=transcripts,
            guard_retries=guard_retries,
        )
        for p in problems
    ]
    results = await _bounded(factories, concurrency, done)
    result = TaskResult(name="interactive")
    if scorer is not None:
        # Mean pedagogy score of the tutor turns of each dialogue, each in its own context.
        triples, owners = [], []
        for index, (outcome, dialogue) in enumerate(results):
            if outcome.error is not None or dialogue is None:
                continue
            for position, turn in enumerate(dialogue.turns):
                if turn.role == "tutor":
                    history = dialogue.history()[:position]
                    triples.append((dialogue.problem.text, history, turn.text))
                    owners.append(index)
        scores = score_many(scorer, triples)
        per_item: dict[int, list[float]] = {}
        for owner, score in zip(owners, scores, strict=True):
            per_item.setdefault(owner, []).append(score)
        for index, values in per_item.items():
            results[index][0].rm_score = round(sum(values) / len(values), 6)
    if judge is not None:
        await judge_dialogues(results, judge, concurrency)
    outcomes = [outcome for outcome, _ in results]
    result.items = [o.to_dict() for o in outcomes]
    result.n = sum(1 for o in outcomes if o.error is None)
    result.metrics = interactive_metrics(outcomes, samples=bootstrap_samples, seed=bootstrap_seed)
    result.wall_s = time.perf_counter() - clock
    return result


async def judge_dialogues(
    results: Sequence[tuple[DialogueOutcome, Dialogue | None]],
    judge: JudgeConfig,
    concurrency: int,
) -> None:
    """Ask the LLM judge about every tutor turn of the dialogues that did not fail, and set
    each outcome's ``judge_leaked``, ``judge_pedagogy_passed`` and ``judge_errors``. A rule
    fails a dialogue when it fails any of its turns; a dialogue with a turn the judge could not
    answer for, and none that failed, has no verdict on that rule (None)."""
    semaphore = asyncio.Semaphore(max(1, concurrency))
    calls, owners = [], []
    for index, (outcome, dialogue) in enumerate(results):
        if outcome.error is not None or dialogue is None:
            continue
        outcome.judge_errors = 0
        history = dialogue.history()
        for position, turn in enumerate(dialogue.turns):
            if turn.role != "tutor":
                continue

            async def one(problem=dialogue.problem, before=history[:position], reply=turn.text):
                async with semaphore:
                    return await ajudge_turn(
                        judge,
                        problem=problem.text,
                        final_answer=problem.final_answer,
                        history=before,
                        reply=reply,
                    )

            calls.append(one())
            owners.append(index)
    verdicts = await asyncio.gather(*calls)
    per_item: dict[int, list[dict[str, Verdict | JudgeError]]] = {}
    for owner, turn_verdicts in zip(owners, verdicts, strict=True):
        per_item.setdefault(owner, []).append(turn_verdicts)
    for index, turns in per_item.items():
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


async def _scaffolding_item(
    item: ScaffoldingItem, tutor: EndpointConfig, seed: int | None, chat: ChatFn
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": item.item_id,
        "source": item.source,
        "has_problem": item.has_problem,
        "reference": item.reference,
        "candidate": None,
        "error": None,
        "error_kind": None,
    }
    messages = build_tutor_messages(item.problem_context(), item.context)
    try:
        completions = await chat(tutor, messages, seed=seed)
        if not completions:
            raise ConnectionError("the model server returned no choices")
    except ENDPOINT_ERRORS as exc:
        record["error"] = _error(exc)
        record["error_kind"] = failure_kind(exc)
        return record
    candidate = split_thinking(completions[0].text).visible.strip()
    record["candidate"] = candidate
    record["finish_reason"] = completions[0].finish_reason
    if item.has_problem:
        students = [t.text for t in item.context if t.role == "student"]
        record["leaked"] = await areveals_answer(
            candidate,
            item.final_answer,
            problem_text=item.problem,
            student_texts=students,
            when_uncheckable=True,
        )
    return record


async def run_scaffolding(
    items: Sequence[ScaffoldingItem],
    tutor: EndpointConfig,
    *,
    seed: int | None,
    concurrency: int,
    chat: ChatFn,
    scorer: Scorer | None = None,
    bootstrap_samples: int = 1000,
    bootstrap_seed: int = 0,
    done: ItemDone | None = None,
) -> TaskResult:
    clock = time.perf_counter()
    factories = [
        lambda it=it: _scaffolding_item(it, tutor, derive_seed(seed, it.item_id), chat)
        for it in items
    ]
    records = await _bounded(factories, concurrency, done)
    result = TaskResult(name="scaffolding", items=records)
    ok = [(item, rec) for item, rec in zip(items, records, strict=True) if not rec["error"]]
    result.n = len(ok)
    kw = {"samples": bootstrap_samples}
    if scorer is not None:
        triples = []
        for item, rec in ok:
            triples.append((item.rm_problem(), list(item.context), rec["candidate"]))
            triples.append((item.rm_problem(), list(item.context), item.reference))
        scores = score_many(scorer, triples)
        wins, margins = [], []
        for index, (_, rec) in enumerate(ok):
            cand, ref = scores[2 * index], scores[2 * index + 1]
            rec["candidate_score"], rec["reference_score"] = round(cand, 6), round(ref, 6)
            rec["win"] = win_value(cand, ref)
            wins.append(rec["win"])
            margins.append(cand - ref)
        result.metrics["win_rate"] = bootstrap_ci(wins, seed=bootstrap_seed + 1, **kw)
        result.metrics["rm_margin"] = bootstrap_ci(margins, seed=bootstrap_seed + 2, **kw)
    else:
        result.notes.append("no reward model: win_rate not measured")
    leaks = [float(rec["leaked"]) for _, rec in ok if "leaked" in rec]
    if leaks:
        result.metrics["scaffold_leak_rate"] = bootstrap_ci(leaks, seed=bootstrap_seed + 3, **kw)
    result.wall_s = time.perf_counter() - clock
    return result


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
        "source": "mathdial" if problem.problem_id.startswith("mathdial:") else "bank",
        "reference": problem.final_answer,
        "answer": None,
        "correct": None,
        "error": None,
        "error_kind": None,
    }
    try:
        completions = await chat(solver, solving_messages(problem.text), seed=seed)
        if not completions:
            raise ConnectionError("the model server returned no choices")
    except ENDPOINT_ERRORS as exc:
        record["error"] = _error(exc)
        record["error_kind"] = failure_kind(exc)
        return record
    split = split_thinking(completions[0].text)
    answer = extract_final_answer(split.visible) or extract_final_answer(completions[0].text)
    record["answer"] = answer
    record["correct"] = await ais_correct(answer, problem.final_answer)
    record["finish_reason"] = completions[0].finish_reason
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
    factories = [
        lambda p=p: _solving_item(p, solver, derive_seed(seed, p.problem_id), chat)
        for p in problems
    ]
    records = await _bounded(factories, concurrency, done)
    ok = [rec for rec in records if not rec["error"]]
    result = TaskResult(name="solving", items=records, n=len(ok))
    result.metrics["accuracy"] = bootstrap_ci(
        [float(rec["correct"]) for rec in ok], samples=bootstrap_samples, seed=bootstrap_seed + 1
    )
    result.wall_s = time.perf_counter() - clock
    return result
