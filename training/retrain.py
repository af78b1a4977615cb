"""Run a retraining job from the command line (no Django, no Celery): the same
:func:`training.grpo.train` the worker runs, with a progress bar.

    python -m training.retrain --mathdial ../shared/data/mathdial_test.jsonl --problems 40 \\
        --steps 8 --workdir var/jobs/cli-demo

Without ``--endpoint`` it starts its own vLLM server (LoRA enabled) on the base model and stops
it at the end. Run it again with the same ``--workdir`` to resume an interrupted job (a job
that stopped because the model server failed says so, with the first cause). ``--api-key``
(default: ``$TUTOR_MODEL_API_KEY``) is the server's key; a server started here requires it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

from tqdm import tqdm

from inference.launcher import lora_endpoint
from inference.models import DEFAULT_SERVED_MODEL_NAME
from training.dataset import mathdial_problems, read_dataset, write_dataset
from training.grpo import train
from training.jobs import JobCancelled, Progress, TrainJobConfig
from training.rollout import InfrastructureFailure


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    defaults = TrainJobConfig()
    skip = {"endpoint", "student_model", "api_key", "judge"}
    for f in fields(TrainJobConfig):
        if f.name in skip:
            continue
        flag = "--" + f.name.rstrip("_").replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default
            )
        elif f.name in {"init_adapter", "reward_model"}:
            parser.add_argument(flag, dest=f.name, default=default)
        else:
            parser.add_argument(flag, dest=f.name, type=type(default), default=default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.retrain", description=__doc__.split("\n\n")[0]
    )
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--dataset", help="a dataset file exported by the platform (JSONL)")
    data.add_argument("--mathdial", help="train on MathDial problems with their real students")
    parser.add_argument("--problems", type=int, default=40, help="with --mathdial: how many")
    parser.add_argument("--workdir", required=True, help="checkpoints and the final adapter")
    parser.add_argument("--endpoint", help="a running vLLM server (…/v1) with --enable-lora")
    parser.add_argument("--student-model", default=None, help="its served base model name")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("TUTOR_MODEL_API_KEY") or None,
        help="the server's API key (default: $TUTOR_MODEL_API_KEY)",
    )
    parser.add_argument(
        "--judge-endpoint",
        default=None,
        help="an LLM judge server (…/v1) as the reward's style judge (default: off)",
    )
    parser.add_argument("--judge-model", default=None, help="its served model name")
    _add_config_options(parser)
    return parser


def judge_option(args: argparse.Namespace) -> dict | None:
    """The job's ``judge`` option from ``--judge-endpoint`` and ``--judge-model`` (key:
    ``$TUTOR_JUDGE_API_KEY``); None when no judge endpoint is given."""
    if not args.judge_endpoint:
        return None
    return {
        "base_url": args.judge_endpoint,
        "model": args.judge_model or args.student_model or DEFAULT_SERVED_MODEL_NAME,
        "api_key": os.environ.get("TUTOR_JUDGE_API_KEY") or "not-needed",
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    values = {
        f.name: getattr(args, f.name) for f in fields(TrainJobConfig) if hasattr(args, f.name)
    }
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.mathdial:
        dataset_path = workdir / "dataset.jsonl"
        if not dataset_path.exists():
            write_dataset(
                dataset_path, mathdial_problems(args.mathdial, split="train", limit=args.problems)
            )
    else:
        dataset_path = Path(args.dataset)
    problems = len(read_dataset(dataset_path).problems)

    student_model = args.student_model or DEFAULT_SERVED_MODEL_NAME
    with lora_endpoint(
        args.endpoint,
        values["base_model"],
        served_model_name=student_model,
        max_lora_rank=max(16, values["lora_rank"]),
        log_path=workdir / "vllm.log",
        api_key=args.api_key,
    ) as endpoint:
        config = TrainJobConfig(
            **{
                **values,
                "endpoint": endpoint,
                "student_model": student_model,
                "api_key": args.api_key,
                "judge": judge_option(args),
            }
        )
        return _train(config, dataset_path, workdir, problems)


def _train(config: TrainJobConfig, dataset_path: Path, workdir: Path, problems: int) -> int:
    """Run the job with a progress bar; print the result as JSON."""
    print(
        f"{problems} problems, {config.steps} steps of {config.problems_per_step} problems x "
        f"{config.group_size} rollouts; checkpoints in {workdir}",
        file=sys.stderr,
    )
    bar = tqdm(total=config.steps, unit="step", file=sys.stderr)

    def on_progress(progress: Progress) -> None:
        bar.n = progress.step
        m = progress.metrics
        if m:
            bar.set_postfix(
                reward=f"{m.get('reward_mean', 0):+.2f}",
                leak=f"{m.get('leak_rate', 0):.2f}",
                kl=f"{m.get('kl', 0):.3f}",
            )
        bar.refresh()

    started = time.perf_counter()
    try:
        result = train(
            config,
            str(dataset_path),
            str(workdir),
            on_progress=on_progress,
            log=lambda line: bar.write(line, file=sys.stderr),
        )
    except JobCancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except InfrastructureFailure as exc:
        print(f"stopped: {exc}; run again with the same --workdir to resume", file=sys.stderr)
        return 4
    finally:
        bar.close()
    print(
        json.dumps(
            {
                "adapter": result.adapter_dir,
                "steps": result.steps_done,
                "wall_s": round(time.perf_counter() - started, 1),
                "metrics": result.metrics,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
