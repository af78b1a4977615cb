"""What the evaluation tasks share: item selection, bounded concurrency, endpoint calls, the
scorer protocol and a task's result.

Items are chosen in a fixed order that does not depend on the run's seed: MathDial rows and
bridge dialogues are sorted by a hash of their id salted with the task name, and ``limit``
takes a prefix, so a smaller run is a subset of a larger one and two model versions evaluated
with the same limit see the same items. The bank's own problems (``extra_problems``) are
interleaved with the MathDial ones (bank, MathDial, bank, ...) in the order given.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from training.dataset import mathdial_problems
from training.rollout import (
    INFRA_KINDS,
    ChatFn,
    Completion,
    EndpointConfig,
    Messages,
    RolloutProblem,
    failure_kind,
)

from .metrics import Metric

ItemDone = Callable[[], None]

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


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


def problem_source(problem: RolloutProblem) -> str:
    """Where a problem came from, as items record it: ``mathdial`` or the platform's ``bank``."""
    return "mathdial" if problem.problem_id.startswith("mathdial:") else "bank"


# -- running ----------------------------------------------------------------------------------
async def bounded_map(
    run_one: Callable[[_Item], Awaitable[_Result]],
    items: Sequence[_Item],
    concurrency: int,
    done: ItemDone | None,
) -> list[_Result]:
    """``run_one`` over ``items``, at most ``concurrency`` at a time, results in item order;
    ``done()`` after each item."""
    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(item: _Item) -> _Result:
        async with semaphore:
            result = await run_one(item)
        if done is not None:
            done()
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def record_failure(record: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """``record`` with an endpoint failure's message and infrastructure cause set."""
    record["error"] = error_text(exc)
    record["error_kind"] = failure_kind(exc)
    return record


async def first_completion(
    chat: ChatFn, endpoint: EndpointConfig, messages: Messages, *, seed: int | None
) -> Completion:
    """The first completion of one call; a server that returns none counts as unreachable
    (a ``ConnectionError``, one of :data:`training.rollout.ENDPOINT_ERRORS`)."""
    completions = await chat(endpoint, messages, seed=seed)
    if not completions:
        raise ConnectionError("the model server returned no choices")
    return completions[0]
