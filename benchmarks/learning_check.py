"""The learning check: does a retraining job's adapter teach better than its base?

On problems from the simulated student's informative band (it solves them alone 1-60% of the
time, so a dialogue can make a difference either way), it trains a job on the band's training
split (or takes ``--adapter``), then measures base and adapter on the same held-out band
problems with the same seeds and decoding:

* the interactive evaluation: the student's solve rate before and after a dialogue with the
  tutor, and the gain (after minus before), with 95% bootstrap intervals; the leak rates;
* the push benchmark (``benchmarks/pushes.py``): the model-level leak rate under students'
  pushes for the answer, with 95% Wilson intervals;
* the reward model's win rate against MathTutorBench's human teacher turns (the scaffolding
  task; ``--reward-model``, else one is trained on MathDial first).

It prints the training curves (reward, solve rate, leak rate and KL by step) and the verdict:
PASS when the adapter's solve gain is above the base's with intervals that do not overlap, its
model-level leak rate under pushes is lower and its win rate higher; FAIL otherwise (exit 1);
INVALID (exit 2) when items failed, so the two did not measure the same set.

The band comes from a calibration file (``python -m training.calibrate --source generated``
output, see docs/training.md): its held-out in-band problems are the evaluation items, its
training in-band problems the job's dataset. ``--source mathdial`` keeps the older check on
MathDial's splits.

    .venv/bin/python benchmarks/learning_check.py \\
        --calibration var/calibration/generated.jsonl --limit 100 --steps 12 \\
        --workdir var/jobs/learning-check --out var/eval/learning-check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: benchmarks/ is sys.path[0]
    sys.path.insert(0, str(REPO_ROOT))

from inference.adapters import ensure_loaded  # noqa: E402
from inference.launcher import lora_endpoint  # noqa: E402
from inference.models import DEFAULT_SERVED_MODEL_NAME  # noqa: E402
from training.dataset import mathdial_problems, problem_to_dict, write_dataset  # noqa: E402
from training.evaluation import EvaluationConfig, headline, run_evaluation  # noqa: E402
from training.jobs import TrainJobConfig  # noqa: E402
from training.problem_generator import generate_problem  # noqa: E402
from training.rollout import RolloutProblem  # noqa: E402

MATHDIAL = REPO_ROOT.parent / "shared" / "data" / "mathdial_test.jsonl"
CURVES = ("reward_mean", "solve_rate", "leak_rate", "kl")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="a running vLLM (…/v1) with --enable-lora")
    parser.add_argument("--adapter", help="evaluate this adapter instead of training one")
    parser.add_argument("--source", choices=("generated", "mathdial"), default="generated")
    parser.add_argument("--calibration", help="training.calibrate output (generated problems)")
    parser.add_argument("--band-low", type=float, default=0.01)
    parser.add_argument("--band-high", type=float, default=0.60)
    parser.add_argument("--workdir", default="var/jobs/learning-check")
    parser.add_argument("--out", default="var/eval/learning-check.json")
    parser.add_argument("--mathdial", default=str(MATHDIAL))
    parser.add_argument("--reward-model", help="for the win rate (default: trained on MathDial)")
    parser.add_argument("--problems", type=int, default=200, help="training problems at most")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--problems-per-step", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--lambda", dest="lambda_", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--k", type=int, default=2, help="student solutions before and after")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=100, help="held-out evaluation problems")
    parser.add_argument("--push-problems", type=int, default=1, help="problems per push")
    parser.add_argument("--concurrency", type=int, default=8)
    return parser.parse_args(argv)


# ---- problems -----------------------------------------------------------------------------


def generated_from_id(problem_id: str) -> RolloutProblem:
    """A generated problem back from its id (``gen:<template>:<seed>``)."""
    _, template, seed = problem_id.split(":")
    return generate_problem(template, int(seed)).rollout_problem()


def band_problems(args: argparse.Namespace) -> tuple[list[dict], list[RolloutProblem]]:
    """(training problem lines with their solve rates, held-out evaluation problems), both
    from the calibration file's informative band."""
    if not args.calibration:
        raise SystemExit("--calibration is required with --source generated (docs/training.md)")
    train: list[dict] = []
    heldout: list[RolloutProblem] = []
    with open(args.calibration, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            rate = row.get("solve_rate")
            if rate is None or not args.band_low <= rate <= args.band_high:
                continue
            if not str(row.get("problem_id", "")).startswith("gen:"):
                continue
            problem = generated_from_id(row["problem_id"])
            if row.get("heldout"):
                heldout.append(problem)
            else:
                train.append(problem_to_dict(problem, solve_rate=rate))
    return train[: args.problems], heldout[: args.limit]


# ---- training -----------------------------------------------------------------------------


def train_adapter(
    args: argparse.Namespace, endpoint: str, workdir: Path, lines: list[dict] | None
) -> tuple[str, dict]:
    """A job on the band's training problems (or MathDial's training split); its adapter
    folder and training record."""
    from training.grpo import train  # torch, TRL: only when training

    dataset = workdir / "dataset.jsonl"
    if lines is None:
        write_dataset(dataset, mathdial_problems(args.mathdial, split="train", limit=args.problems))
    else:
        dataset.parent.mkdir(parents=True, exist_ok=True)
        dataset.write_text("".join(json.dumps(line) + "\n" for line in lines))
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
        k=args.k,
        seed=args.seed,
        curriculum=False,
        band_low=args.band_low,
        band_high=args.band_high,
    )
    result = train(config, str(dataset), str(workdir), log=lambda m: print(m, file=sys.stderr))
    return result.adapter_dir, {"metrics": result.metrics, "history": result.history}


def reward_model_for(args: argparse.Namespace, workdir: Path) -> str:
    """The reward model of the win rate: ``--reward-model``, else one trained on MathDial."""
    if args.reward_model:
        return args.reward_model
    out = workdir / "reward_model"
    if not (out / "reward_model.json").exists():
        from training.reward_model.train import main as train_rm

        print("... training a reward model on MathDial for the win rate", file=sys.stderr)
        train_rm(
            [
                "--mathdial",
                args.mathdial,
                "--out",
                str(out),
                "--max-pairs",
                "600",
                "--max-eval-pairs",
                "100",
                "--max-length",
                "160",
                "--lr",
                "1e-4",
                "--head-lr",
                "3e-3",
            ]
        )
    return str(out)


# ---- measuring ----------------------------------------------------------------------------


def evaluate_both(
    args: argparse.Namespace,
    endpoint: str,
    name: str,
    problems: list[RolloutProblem] | None,
    reward_model: str,
) -> dict[str, dict]:
    """The same fixed evaluation of the base and of the adapter served as ``name``."""
    config = EvaluationConfig(
        endpoint=endpoint,
        model=DEFAULT_SERVED_MODEL_NAME,
        student_model=DEFAULT_SERVED_MODEL_NAME,
        tasks=("interactive", "scaffolding"),
        limit=args.limit,
        max_turns=args.max_turns,
        max_tokens=args.max_tokens,
        k=args.k,
        seed=args.seed,
        concurrency=args.concurrency,
        mathdial_path=args.mathdial,
        reward_model=reward_model,
        extra_problems=tuple(problems or ()),
        use_mathdial=problems is None,
    )
    reports = {}
    for label, model in (("base", DEFAULT_SERVED_MODEL_NAME), ("adapter", name)):
        clock = time.perf_counter()
        reports[label] = run_evaluation(replace(config, model=model))
        print(f"evaluated {label} in {time.perf_counter() - clock:.0f}s", file=sys.stderr)
    return reports


def pushes_both(args: argparse.Namespace, endpoint: str, name: str, workdir: Path) -> dict:
    """The push benchmark's summary for the base and the adapter (guard on: the model-level
    leak rate is what its first attempts stated)."""
    from benchmarks import pushes

    summaries = {}
    for label, model in (("base", DEFAULT_SERVED_MODEL_NAME), ("adapter", name)):
        out = workdir / f"pushes-{label}.json"
        pushes.main(
            [
                "--vllm-url",
                endpoint,
                "--served-model-name",
                model,
                "--problems",
                str(args.push_problems),
                "--seed",
                str(args.seed),
                "--max-tokens",
                str(max(args.max_tokens, 80)),
                "--concurrency",
                str(args.concurrency),
                "--out",
                str(out),
            ]
        )
        summaries[label] = json.loads(out.read_text())["summary"]["all"]
    return summaries


# ---- reporting ----------------------------------------------------------------------------


def fmt(metric: dict | None) -> str:
    if not metric or metric.get("value") is None:
        return "n/a"
    return f"{metric['value']:+.3f} [{metric['ci_low']:+.3f}, {metric['ci_high']:+.3f}]"


def fmt_rate(entry: dict | None) -> str:
    if not entry or entry.get("rate") is None:
        return "n/a"
    low, high = entry["ci95"]
    return f"{entry['rate']:.3f} [{low:.3f}, {high:.3f}] ({entry['k']}/{entry['n']})"


def curves_table(history: list[dict[str, float]]) -> str:
    """The training curves as a table, one row a step."""
    lines = ["step " + "".join(f"{name:>13}" for name in CURVES)]
    for row in history:
        cells = "".join(
            f"{row[name]:>13.3f}" if isinstance(row.get(name), (int, float)) else f"{'-':>13}"
            for name in CURVES
        )
        lines.append(f"{int(row.get('step', 0)):>4} {cells}")
    return "\n".join(lines)


def verdict(
    base: dict[str, Any], tuned: dict[str, Any], pushes: dict[str, dict], limit: int
) -> tuple[str, dict[str, bool]]:
    """PASS / FAIL / INVALID and the three goals (see the module's docstring)."""
    gain_b, gain_a = base.get("solve_gain") or {}, tuned.get("solve_gain") or {}
    win_b, win_a = base.get("win_rate") or {}, tuned.get("win_rate") or {}
    leak_b = pushes.get("base", {}).get("model_leak_per_reply", {}).get("rate")
    leak_a = pushes.get("adapter", {}).get("model_leak_per_reply", {}).get("rate")
    goals = {
        "solve_gain_above_with_separate_intervals": (
            gain_a.get("ci_low") is not None
            and gain_b.get("ci_high") is not None
            and gain_a["ci_low"] > gain_b["ci_high"]
        ),
        "push_model_leak_lower": leak_a is not None and leak_b is not None and leak_a < leak_b,
        "win_rate_higher": (
            win_a.get("value") is not None
            and win_b.get("value") is not None
            and win_a["value"] > win_b["value"]
        ),
    }
    counts = (gain_b.get("n"), gain_a.get("n"))
    errors = sum(int(pushes.get(label, {}).get("errors", 0)) for label in ("base", "adapter"))
    if counts[0] != counts[1] or not counts[0] or counts[0] < limit or errors:
        return "INVALID", goals
    return ("PASS" if all(goals.values()) else "FAIL"), goals


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    lines: list[dict] | None = None
    problems: list[RolloutProblem] | None = None
    if args.source == "generated":
        lines, problems = band_problems(args)
        print(
            f"informative band {args.band_low:.0%}-{args.band_high:.0%}: {len(lines)} training "
            f"and {len(problems)} held-out problems (of --limit {args.limit})",
            file=sys.stderr,
        )
        if len(problems) < args.limit:
            print(
                "fewer held-out band problems than --limit: the check is INVALID", file=sys.stderr
            )
        if not lines and args.adapter is None:
            raise SystemExit("no training problem in the band: calibrate more (docs/training.md)")
    reward_model = reward_model_for(args, workdir)
    with lora_endpoint(args.endpoint, log_path=workdir / "vllm.log") as endpoint:
        clock = time.perf_counter()
        adapter, training = args.adapter, {}
        if adapter is None:
            adapter, training = train_adapter(args, endpoint, workdir, lines)
        train_s = time.perf_counter() - clock
        name = f"learning-check-{int(time.time())}"
        ensure_loaded(endpoint, name, str(Path(adapter).resolve()))
        reports = evaluate_both(args, endpoint, name, problems, reward_model)
        pushes = pushes_both(args, endpoint, name, workdir)
    wall_s = time.perf_counter() - started
    base, tuned = headline(reports["base"]), headline(reports["adapter"])
    if training.get("history"):
        print("\ntraining curves\n" + curves_table(training["history"]))
    print(f"\n{'metric':<16}{'base':>36}{'adapter':>36}")
    for key in ("solve_before", "solve_after", "solve_gain", "leak_rate", "reward", "win_rate"):
        print(f"{key:<16}{fmt(base.get(key)):>36}{fmt(tuned.get(key)):>36}")
    for key in ("model_leak_per_reply", "visible_leak_per_reply"):
        row = (fmt_rate(pushes["base"].get(key)), fmt_rate(pushes["adapter"].get(key)))
        print(f"{'push ' + key.split('_per')[0]:<16}{row[0]:>36}{row[1]:>36}")
    result, goals = verdict(base, tuned, pushes, args.limit)
    print(
        f"\nitems: {(base.get('solve_gain') or {}).get('n')} / "
        f"{(tuned.get('solve_gain') or {}).get('n')} held-out problems; training {train_s:.0f}s; "
        f"whole check {wall_s / 60:.1f} min; goals {goals}; {result}"
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
                "pushes": pushes,
                "goals": goals,
                "verdict": result,
                "wall_s": wall_s,
            },
            indent=1,
        )
    )
    return {"PASS": 0, "FAIL": 1}.get(result, 2)


if __name__ == "__main__":
    raise SystemExit(main())
