"""The reward-model stage of a retraining job: before GRPO starts, retrain the pedagogy reward
model from what the job's data window holds, so that the reward's learned term follows the
classes' own judgements rather than a model trained once by hand.

Pairs come from the retraining dataset (:mod:`training.reward_model.pairs`): teachers' turn
ratings, students' thumbs (half weight) and the reply attempts the answer guard stopped at
serving time (the reply shown preferred over the stopped one). Problems are split into train
and held-out by key, so the figure the stage reports, the held-out pairwise accuracy, is on
problems the model did not train on.

The stage runs only when it has something to learn from: at least ``min_pairs`` pairs on at
least two problems (one for each side of the split); otherwise the job goes on with the
reward model it was given and says why. Training starts from that model when there is one
(else from the bare encoder) and is kept only if its held-out accuracy is not below the
starting model's on the same pairs: a small window of ratings must not make the reward worse.

The result is written to ``<workdir>/reward_model/stage.json``; a resumed job reads it back
instead of training again, so a killed worker does not change the reward mid-job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .model import RewardModel
from .pairs import (
    PreferencePair,
    blocked_pairs,
    cap,
    dataset_rated_turns,
    dataset_student_rated_turns,
    ratings_pairs,
    split_keys,
    student_ratings_pairs,
)
from .train import evaluate, train_reward_model

STAGE = "reward_model"
DIRNAME = "reward_model"
RESULT_NAME = "stage.json"

StepFn = Callable[[int, int], None]
LogFn = Callable[[str], None]


@dataclass
class RewardModelStageResult:
    """What the stage did. ``path`` is the reward model the job's reward uses from here on
    (the retrained one, or the one it started from, or None)."""

    status: str  # "trained", "kept" (the retrained model was worse held-out), "skipped"
    reason: str
    path: str | None
    pairs: int = 0
    pairs_by_kind: dict[str, int] = field(default_factory=dict)
    train_pairs: int = 0
    held_out_pairs: int = 0
    held_out_problems: int = 0
    accuracy_before: float | None = None  # the starting model's held-out pairwise accuracy
    accuracy_after: float | None = None  # the retrained model's, on the same pairs
    accuracy_by_kind: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def window_pairs(
    records: Sequence[dict], *, history_turns: int = 6, seed: int = 0
) -> list[PreferencePair]:
    """Every preference pair the dataset's non-problem records give."""
    pairs = ratings_pairs(dataset_rated_turns(records, history_turns=history_turns), seed=seed)
    students = dataset_student_rated_turns(records, history_turns=history_turns)
    pairs += student_ratings_pairs(students, seed=seed)
    pairs += blocked_pairs(records, history_turns=history_turns, seed=seed)
    return pairs


def _count_kinds(pairs: Sequence[PreferencePair]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.kind] = counts.get(pair.kind, 0) + 1
    return dict(sorted(counts.items()))


def load_result(workdir: str | Path) -> RewardModelStageResult | None:
    """The stage's saved result in ``workdir``, if it ran there before."""
    path = Path(workdir) / DIRNAME / RESULT_NAME
    if not path.exists():
        return None
    return RewardModelStageResult(**json.loads(path.read_text(encoding="utf-8")))


def _save(workdir: Path, result: RewardModelStageResult) -> RewardModelStageResult:
    folder = workdir / DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULT_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def retrain_reward_model(
    records: Sequence[dict],
    workdir: str | Path,
    *,
    init: str | None = None,
    encoder: str | None = None,
    min_pairs: int = 20,
    epochs: int = 2,
    held_out: float = 0.2,
    max_pairs: int = 2000,
    train_layers: int = 2,
    seed: int = 0,
    on_step: StepFn | None = None,
    log: LogFn = print,
) -> RewardModelStageResult:
    """Run the stage (see the module's docstring) into ``<workdir>/reward_model``. ``init`` is
    the reward model to start from; without one, a fresh head on ``encoder`` (default:
    all-MiniLM-L6-v2)."""
    work = Path(workdir)
    saved = load_result(work)
    if saved is not None:
        log(f"reward model stage: {saved.status} earlier in this job ({saved.reason})")
        return saved
    started = time.monotonic()
    pairs = window_pairs(records, seed=seed)
    kinds = _count_kinds(pairs)
    problems = {p.problem_key for p in pairs}
    if len(pairs) < min_pairs or len(problems) < 2:
        reason = (
            f"{len(pairs)} preference pairs on {len(problems)} problems in the window "
            f"(the stage needs {min_pairs} pairs on 2 problems or more)"
        )
        log(f"reward model stage skipped: {reason}")
        return _save(work, RewardModelStageResult("skipped", reason, init, len(pairs), kinds))
    held = split_keys([p.problem_key for p in pairs], held_out, seed)
    train_pairs = cap([p for p in pairs if p.problem_key not in held], max_pairs, seed)
    eval_pairs = [p for p in pairs if p.problem_key in held]
    log(
        f"reward model stage: {len(pairs)} pairs {kinds}; {len(train_pairs)} to train on, "
        f"{len(eval_pairs)} held out on {len(held)} problems"
    )
    torch.manual_seed(seed)
    model = RewardModel.load(init) if init else RewardModel.from_encoder(encoder)
    model.train_top_layers(train_layers)
    before = evaluate(model, eval_pairs).get("accuracy")
    losses = train_reward_model(
        model, train_pairs, epochs=epochs, seed=seed, progress=False, on_step=on_step
    )
    after_metrics = evaluate(model, eval_pairs)
    after = after_metrics.get("accuracy")
    result = RewardModelStageResult(
        status="trained",
        reason="",
        path=None,
        pairs=len(pairs),
        pairs_by_kind=kinds,
        train_pairs=len(train_pairs),
        held_out_pairs=len(eval_pairs),
        held_out_problems=len(held),
        accuracy_before=before,
        accuracy_after=after,
        accuracy_by_kind=after_metrics.get("accuracy_by_kind", {}),
        steps=len(losses),
    )
    start = "the starting model" if init else "the untrained head"
    if init and before is not None and after is not None and after < before:
        result.status = "kept"
        result.path = init
        result.reason = (
            f"held-out pairwise accuracy fell from {before:.3f} to {after:.3f}: the job keeps "
            "the reward model it started with"
        )
    else:
        out = model.save(work / DIRNAME / "model")
        result.path = str(out)
        result.reason = f"held-out pairwise accuracy {_fmt(before)} ({start}) → {_fmt(after)}"
    result.seconds = round(time.monotonic() - started, 1)
    log(f"reward model stage {result.status}: {result.reason}")
    return _save(work, result)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
