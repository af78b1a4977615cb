"""The scaffolding task: MathTutorBench's scaffolding-generation setting. Every
``dialog_history`` in the bridge files ends with a human teacher turn; the context is the
history without that turn, the tutor writes its own turn for that context, and the pedagogy
reward model compares the two in the same context."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.prompts import ProblemContext, Turn, build_tutor_messages
from inference.thinking import split_thinking
from pedagogy.judges import areveals_answer
from training.data.mathtutorbench import read_mathtutorbench
from training.rollout import ENDPOINT_ERRORS, ChatFn, EndpointConfig, derive_seed

from .common import (
    ItemDone,
    Scorer,
    TaskResult,
    bounded_map,
    first_completion,
    record_failure,
    score_many,
    stable_order,
)
from .metrics import bootstrap_ci, win_value


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
        completion = await first_completion(chat, tutor, messages, seed=seed)
    except ENDPOINT_ERRORS as exc:
        return record_failure(record, exc)
    candidate = split_thinking(completion.text).visible.strip()
    record["candidate"] = candidate
    record["finish_reason"] = completion.finish_reason
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

    async def run_item(item: ScaffoldingItem) -> dict[str, Any]:
        return await _scaffolding_item(item, tutor, derive_seed(seed, item.item_id), chat)

    records = await bounded_map(run_item, items, concurrency, done)
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
