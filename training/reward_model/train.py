"""Train the pedagogy reward model (Bradley-Terry on preference pairs), split by problem.

    python -m training.reward_model.train --mathdial ../shared/data/mathdial_test.jsonl \\
        [--mathtutorbench ../shared/data/mathtutorbench_mathdial_bridge.json] \\
        [--ratings class-7-sessions.jsonl ...] --out var/reward_models/NAME \\
        [--epochs 1 --batch-size 16 --lr 5e-5 --max-pairs 1500 --max-eval-pairs 400]

Prints a progress bar, the held-out pairwise accuracy (overall and per pair kind) and, when
ratings are given, the Spearman correlation between scores and the rated turns' utilities on
held-out problems; saves the model and ``metrics.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.mathdial import read_mathdial
from ..data.mathtutorbench import read_mathtutorbench
from .model import DEFAULT_ENCODER, RewardModel
from .pairs import (
    PreferencePair,
    RatedTurn,
    blocked_pairs,
    cap,
    dataset_rated_turns,
    dataset_student_rated_turns,
    mathdial_pairs,
    mathtutorbench_pairs,
    rated_turns,
    ratings_pairs,
    read_export,
    split_keys,
    student_rated_turns,
    student_ratings_pairs,
)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when undefined."""
    if len(x) < 2:
        return None

    def ranks(values):
        values = np.asarray(values, dtype=float)
        order = values.argsort(kind="stable")
        result = np.empty(len(values))
        result[order] = np.arange(len(values), dtype=float)
        for value in np.unique(values):
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    a, b = ranks(x), ranks(y)
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def pair_scores(
    model: RewardModel, pairs: Sequence[PreferencePair], batch_size: int = 32
) -> tuple[list[float], list[float]]:
    chosen = model.score_batch([p.chosen for p in pairs], batch_size)
    rejected = model.score_batch([p.rejected for p in pairs], batch_size)
    return chosen, rejected


def evaluate(
    model: RewardModel,
    pairs: Sequence[PreferencePair],
    rated: Sequence[RatedTurn] = (),
    batch_size: int = 32,
) -> dict:
    """Pairwise accuracy (a tie counts half), overall and per kind; Spearman on rated turns."""
    metrics: dict = {"pairs": len(pairs)}
    if pairs:
        chosen, rejected = pair_scores(model, pairs, batch_size)
        hits = [
            1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True)
        ]
        metrics["accuracy"] = sum(hits) / len(hits)
        by_kind = defaultdict(list)
        for pair, hit in zip(pairs, hits, strict=True):
            by_kind[pair.kind].append(hit)
        metrics["accuracy_by_kind"] = {k: sum(v) / len(v) for k, v in sorted(by_kind.items())}
        metrics["pairs_by_kind"] = {k: len(v) for k, v in sorted(by_kind.items())}
        metrics["mean_margin"] = float(np.mean(np.subtract(chosen, rejected)))
        # a trivial baseline to beat: the shorter turn is the better one
        short = [
            1.0
            if len(p.chosen.turn) < len(p.rejected.turn)
            else 0.5
            if len(p.chosen.turn) == len(p.rejected.turn)
            else 0.0
            for p in pairs
        ]
        metrics["baseline_shorter_turn_accuracy"] = sum(short) / len(short)
    if rated:
        scores = model.score_batch([r.sample for r in rated], batch_size)
        metrics["rated_turns"] = len(rated)
        metrics["spearman"] = spearman(scores, [r.utility for r in rated])
    return metrics


def train_reward_model(
    model: RewardModel,
    train_pairs: Sequence[PreferencePair],
    *,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 5e-5,
    head_lr: float = 1e-3,
    weight_decay: float = 0.01,
    center: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    log=None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[float]:
    """Bradley-Terry training: minimise -w * log sigmoid(s_chosen - s_rejected), plus a small
    pull of the scores toward zero. Returns the mean loss of each optimiser step;
    ``on_step(done, total)`` is called after each."""
    torch.manual_seed(seed)
    order_rng = random.Random(seed)
    head_params = list(model.head.parameters())
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": head_params, "lr": head_lr}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(train_pairs) / batch_size)
    total = max(steps_per_epoch * epochs, 1)
    warmup = max(total // 10, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total - step) / (total - warmup + 1e-9))),
    )
    losses: list[float] = []
    model.train()
    bar = tqdm(total=total, desc="train", unit="step", disable=not progress, file=sys.stderr)
    for _epoch in range(epochs):
        order = list(range(len(train_pairs)))
        order_rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = [train_pairs[i] for i in order[start : start + batch_size]]
            samples = [p.chosen for p in batch] + [p.rejected for p in batch]
            scores = model.score_samples([(s.problem, s.history, s.turn) for s in samples])
            chosen, rejected = scores[: len(batch)], scores[len(batch) :]
            weights = torch.tensor([p.weight for p in batch], dtype=scores.dtype)
            loss = -(weights * F.logsigmoid(chosen - rejected)).sum() / weights.sum()
            loss = loss + center * scores.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            if on_step is not None:
                on_step(len(losses), total)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if log and len(losses) % 20 == 0:
                log(f"step {len(losses)}/{total} loss {np.mean(losses[-20:]):.4f}")
    bar.close()
    model.eval()
    return losses


def build_data(args) -> tuple[list[PreferencePair], list[RatedTurn]]:
    pairs: list[PreferencePair] = []
    for path in args.mathdial or []:
        pairs += mathdial_pairs(
            read_mathdial(path), history_turns=args.history_turns, seed=args.seed
        )
    for path in args.mathtutorbench or []:
        items = read_mathtutorbench(path)
        pairs += mathtutorbench_pairs(items, history_turns=args.history_turns, seed=args.seed)
    rated: list[RatedTurn] = []
    if args.ratings:
        # Class exports hold one session a line; retraining datasets have a "kind" on each.
        lines = read_export(args.ratings)
        sessions = [line for line in lines if "kind" not in line]
        records = [line for line in lines if "kind" in line]
        rated = rated_turns(sessions, history_turns=args.history_turns)
        rated += dataset_rated_turns(records, history_turns=args.history_turns)
        pairs += ratings_pairs(rated, seed=args.seed)
        pairs += blocked_pairs(records, history_turns=args.history_turns, seed=args.seed)
        students = student_rated_turns(sessions, history_turns=args.history_turns)
        students += dataset_student_rated_turns(records, history_turns=args.history_turns)
        pairs += student_ratings_pairs(students, seed=args.seed)
    return pairs, rated


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.reward_model.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--mathdial", nargs="*", default=[], help="MathDial JSONL files")
    parser.add_argument("--mathtutorbench", nargs="*", default=[], help="MathTutorBench JSON")
    parser.add_argument(
        "--ratings",
        nargs="*",
        default=[],
        help="class export JSONL files (teachers' and students' ratings), or retraining "
        "dataset files (their teachers' and students' ratings and the guard's blocked attempts)",
    )
    parser.add_argument("--out", required=True, help="folder to save the model into")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder folder")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5, help="encoder learning rate")
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--max-pairs", type=int, default=1500, help="cap on training pairs")
    parser.add_argument("--max-eval-pairs", type=int, default=400, help="cap on held-out pairs")
    parser.add_argument("--max-length", type=int, default=192, help="tokens per input")
    parser.add_argument("--history-turns", type=int, default=6)
    parser.add_argument(
        "--train-layers", type=int, default=2, help="top encoder blocks to train (-1: all)"
    )
    parser.add_argument("--held-out", type=float, default=0.2, help="fraction of problems")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not (args.mathdial or args.mathtutorbench or args.ratings):
        parser.error("give at least one of --mathdial, --mathtutorbench, --ratings")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.monotonic()
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    def log(message):
        print(message, flush=True)

    pairs, rated = build_data(args)
    held = split_keys(
        [p.problem_key for p in pairs] + [r.problem_key for r in rated], args.held_out, args.seed
    )
    train_all = [p for p in pairs if p.problem_key not in held]
    eval_all = [p for p in pairs if p.problem_key in held]
    train_pairs = cap(train_all, args.max_pairs, args.seed)
    eval_pairs = cap(eval_all, args.max_eval_pairs, args.seed)
    eval_rated = [r for r in rated if r.problem_key in held]
    train_problems = {p.problem_key for p in train_pairs}
    log(
        f"pairs: {len(pairs)} ({len(train_all)} train / {len(eval_all)} held-out); using "
        f"{len(train_pairs)} train on {len(train_problems)} problems, {len(eval_pairs)} held-out "
        f"on {len({p.problem_key for p in eval_pairs})} problems; {len(eval_rated)} held-out "
        f"rated turns"
    )
    if not train_pairs:
        raise SystemExit("no training pairs")

    model = RewardModel.from_encoder(
        args.encoder, max_length=args.max_length, history_turns=args.history_turns
    )
    trainable = model.train_top_layers(args.train_layers)
    log(f"encoder {model.base_encoder}: {trainable:,} trainable parameters")

    before = evaluate(model, eval_pairs[: min(len(eval_pairs), 100)]) if eval_pairs else {}
    losses = train_reward_model(
        model,
        train_pairs,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        head_lr=args.head_lr,
        seed=args.seed,
        progress=not args.no_progress,
        log=log if args.no_progress else None,
    )
    held_out = evaluate(model, eval_pairs, eval_rated)
    train_sample = evaluate(model, cap(train_pairs, 100, args.seed))
    metrics = {
        "held_out": held_out,
        "train_sample": train_sample,
        "untrained_held_out_first_100": before,
        "loss_first_20": float(np.mean(losses[:20])),
        "loss_last_20": float(np.mean(losses[-20:])),
        "steps": len(losses),
        "train_pairs": len(train_pairs),
        "train_problems": len(train_problems),
        "held_out_problems": len(held),
        "args": {k: v for k, v in vars(args).items()},
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    out = model.save(args.out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(
        f"held-out pairwise accuracy: {held_out.get('accuracy', float('nan')):.3f} "
        f"on {held_out.get('pairs', 0)} pairs {held_out.get('accuracy_by_kind', {})}"
    )
    log(
        f"shorter-turn baseline: {held_out.get('baseline_shorter_turn_accuracy', float('nan')):.3f}"
    )
    if "spearman" in held_out:
        log(f"held-out Spearman (score vs rated utility): {held_out['spearman']}")
    log(f"saved to {out} in {metrics['wall_seconds']} s")
    return metrics


if __name__ == "__main__":
    main()
