"""The learning check: does a retraining job's adapter teach better than its base?

Trains a job on MathDial's training split (or takes ``--adapter``), then evaluates the base
model and the adapter with the same fixed interactive evaluation (held-out MathDial problems,
fixed seeds and decoding) and prints leak rate and combined reward (hard variant, lambda 1:
-1 for a leak, else the student's post-dialogue solve rate) with bootstrap intervals. Exit
status 0 when the adapter lowers the leak rate and raises the combined reward, 1 when it does
not (the check can fail), 2 when items failed so the two runs did not measure the same set.

    .venv/bin/python benchmarks/learning_check.py --steps 12 --limit 40 \\
        --workdir var/jobs/learning-check --out var/eval/learning-check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from inference.adapters import ensure_loaded
from inference.launcher import lora_endpoint
from inference.models import DEFAULT_SERVED_MODEL_NAME
from training.dataset import mathdial_problems, write_dataset
from training.evaluation import EvaluationConfig, headline, run_evaluation
from training.grpo import train
from training.jobs import TrainJobConfig

MATHDIAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mathdial_test.jsonl"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="a running vLLM (…/v1) with --enable-lora")
    parser.add_argument("--adapter", help="evaluate this adapter instead of training one")
    parser.add_argument("--workdir", default="var/jobs/learning-check")
    parser.add_argument("--out", default="var/eval/learning-check.json")
    parser.add_argument("--mathdial", default=str(MATHDIAL))
    parser.add_argument("--problems", type=int, default=60, help="training problems")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--problems-per-step", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--lambda", dest="lambda_", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=40, help="held-out evaluation problems")
    parser.add_argument("--concurrency", type=int, default=8)
    return parser.parse_args(argv)


def fmt(metric: dict | None) -> str:
    if not metric or metric.get("value") is None:
        return "n/a"
    return f"{metric['value']:+.3f} [{metric['ci_low']:+.3f}, {metric['ci_high']:+.3f}]"


def train_adapter(args: argparse.Namespace, endpoint: str, workdir: Path) -> tuple[str, dict]:
    """A job on MathDial's training split; its adapter folder and training record."""
    dataset = workdir / "dataset.jsonl"
    write_dataset(dataset, mathdial_problems(args.mathdial, split="train", limit=args.problems))
    config = TrainJobConfig(
        endpoint=endpoint,
        student_model=DEFAULT_SERVED_MODEL_NAME,
        steps=args.steps,
        problems_per_step=args.problems_per_step,
        group_size=args.group_size,
        learning_rate=args.learning_rate,
        lambda_=args.lambda_,
        beta=args.beta,
        max_turns=args.max_turns,
        max_tokens=args.max_tokens,
        seed=args.seed,
        curriculum=False,
    )
    result = train(config, str(dataset), str(workdir), log=lambda m: print(m, file=sys.stderr))
    return result.adapter_dir, {"metrics": result.metrics, "history": result.history}


def evaluate_both(args: argparse.Namespace, endpoint: str, adapter: str) -> dict[str, dict]:
    """The same fixed interactive evaluation of the base and of the adapter."""
    name = f"learning-check-{int(time.time())}"
    ensure_loaded(endpoint, name, str(Path(adapter).resolve()))
    config = EvaluationConfig(
        endpoint=endpoint,
        model=DEFAULT_SERVED_MODEL_NAME,
        student_model=DEFAULT_SERVED_MODEL_NAME,
        tasks=("interactive",),
        limit=args.limit,
        max_turns=args.max_turns,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        mathdial_path=args.mathdial,
    )
    reports = {}
    for label, model in (("base", DEFAULT_SERVED_MODEL_NAME), ("adapter", name)):
        clock = time.perf_counter()
        reports[label] = run_evaluation(replace(config, model=model))
        print(f"evaluated {label} in {time.perf_counter() - clock:.0f}s", file=sys.stderr)
    return reports


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with lora_endpoint(args.endpoint, log_path=workdir / "vllm.log") as endpoint:
        started = time.perf_counter()
        adapter, training = args.adapter, {}
        if adapter is None:
            adapter, training = train_adapter(args, endpoint, workdir)
        train_s = time.perf_counter() - started
        reports = evaluate_both(args, endpoint, adapter)
    base, tuned = headline(reports["base"]), headline(reports["adapter"])
    print(f"{'metric':<14}{'base':>34}{'adapter':>34}")
    for key in ("leak_rate", "reward", "solve_after", "solve_gain", "mean_turns"):
        print(f"{key:<14}{fmt(base.get(key)):>34}{fmt(tuned.get(key)):>34}")
    leak_down = tuned["leak_rate"]["value"] < base["leak_rate"]["value"]
    reward_up = tuned["reward"]["value"] > base["reward"]["value"]
    verdict = "PASS" if leak_down and reward_up else "FAIL"
    counts = (base["leak_rate"]["n"], tuned["leak_rate"]["n"])
    if counts[0] != counts[1] or counts[0] < args.limit:
        verdict = "INVALID"  # items failed (server errors): the two are not the same set
    print(
        f"items: {counts[0]} / {counts[1]} of {args.limit} held-out problems; training "
        f"{train_s:.0f}s; leak rate lowered: {leak_down}; combined reward raised: "
        f"{reward_up}; {verdict}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "adapter": adapter,
                "training": training,
                "reports": reports,
                "verdict": verdict,
            },
            indent=1,
        )
    )
    return {"PASS": 0, "FAIL": 1}.get(verdict, 2)


if __name__ == "__main__":
    raise SystemExit(main())
