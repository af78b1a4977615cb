"""A stand-in for ``training.grpo.train`` with the same contract, for tests of the
logic around it (progress, cancel, redelivery): the retraining tests point
``TUTOR_TRAINING_FUNCTION`` here. It reads the dataset with the real reader, "trains"
``config.steps`` steps, checkpoints every step into ``workdir`` and resumes from there when
called again with the same ``workdir``, as the real trainer does.

Environment (so a Celery worker in another process behaves the same):
``FAKE_TRAINING_STEP_SECONDS`` sleeps per step; ``FAKE_TRAINING_DIE_AT`` raises
:class:`WorkerDied` (not an ``Exception``: nothing catches it, like a killed process) when
that step starts, once per workdir.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from training.dataset import read_dataset
from training.jobs import JobCancelled, Progress, TrainJobConfig, TrainResult


class WorkerDied(BaseException):
    pass


def run_training_job(
    config: TrainJobConfig,
    dataset_path: str,
    workdir: str,
    *,
    on_progress=None,
    should_stop=None,
    log=print,
) -> TrainResult:
    work = Path(workdir)
    checkpoint = work / "checkpoint.json"
    start = json.loads(checkpoint.read_text())["step"] if checkpoint.exists() else 0
    with open(work / "calls.txt", "a") as calls:
        calls.write(f"{os.getpid()} {start}\n")
    dataset = read_dataset(dataset_path)
    step_seconds = float(os.environ.get("FAKE_TRAINING_STEP_SECONDS", "0"))
    die_at = int(os.environ.get("FAKE_TRAINING_DIE_AT", "0"))
    report = on_progress or (lambda progress: None)
    report(Progress(step=start, total_steps=config.steps, message=f"fake trainer from {start}"))
    history = []
    for step in range(start + 1, config.steps + 1):
        if should_stop is not None and should_stop():
            raise JobCancelled(f"stopped before step {step}")
        if step == die_at and not (work / "died").exists():
            (work / "died").write_text(str(step))
            raise WorkerDied(f"killed at step {step}")
        time.sleep(step_seconds)
        metrics = {
            "reward_mean": round(step * 0.1, 3),
            "solve_rate": 0.5,
            "leak_rate": 0.2,
            "kl": round(step * 0.01, 3),
            "problems": float(len(dataset.problems)),
            "lambda": config.lambda_,
        }
        history.append({"step": step, **metrics})
        checkpoint.write_text(json.dumps({"step": step}))
        report(
            Progress(
                step=step, total_steps=config.steps, metrics=metrics, checkpoint=str(checkpoint)
            )
        )
        log(f"step {step} done")
    adapter = work / "adapter"
    adapter.mkdir(exist_ok=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": config.lora_rank}))
    return TrainResult(
        adapter_dir=str(adapter),
        steps_done=config.steps,
        history=history,
        metrics={"reward_mean": 0.9, "solve_rate": 0.6, "leak_rate": 0.1, "kl": float("nan")},
        resumed_from=start or None,
    )
