"""Multi-turn GRPO for the tutor, on TRL's ``GRPOTrainer`` with a custom rollout function.

What TRL does here: the GRPO loss (clipped ratio, group-normalised advantages, KL to the
reference), LoRA through PEFT (the reference policy is the base with the adapter disabled, so
no second copy of the weights), the optimiser, checkpointing and resuming (``Trainer``), logging.
What this module and its helpers add, in the rollout function TRL calls once per step
(:class:`training.grpo_rollouts.TutorRollouts`):

* problems come from the Self-Evolving Curriculum (:mod:`training.curriculum`), not from TRL's
  sampler: the trainer's dataset only holds placeholder rows, one per group;
* each problem is rolled out ``group_size`` times as a whole dialogue with the simulated student
  (:func:`training.rollout.run_rollouts`) on our OpenAI-compatible vLLM server, which serves the
  current policy as a LoRA adapter (re-published after every optimiser step, on-policy:
  :class:`training.publisher.PolicyPublisher`);
* each dialogue becomes one training sequence (:func:`training.encoding.encode_dialogue`): the
  first tutor prompt is the prompt, and the completion is the rest of the dialogue with only
  the tutor's own tokens unmasked (TRL's ``env_mask``): student turns and chat-template glue
  get no gradient;
* the reward is :func:`training.rewards.score_dialogue` (post-dialogue solve rate minus lambda
  for a leak or a rejected style, plus mu times the pedagogy reward model), handed to TRL as an
  extra field that the reward function returns as it is;
* a step whose rollouts the model server failed (unreachable, timing out, 5xx, not serving the
  policy) beyond ``max_failed_rollouts`` is rolled out again, then the job stops with the
  reason (:class:`training.rollout.InfrastructureFailure`); the few failed rollouts allowed get
  their group's mean reward, so that they move no advantage.

Imports torch, transformers, peft and trl: only a job that really trains loads this module.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from accelerate import PartialState
from datasets import Dataset as HFDataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

if TYPE_CHECKING:
    from peft import PeftModel

from inference.models import resolve_model_path
from training.curriculum import SelfEvolvingCurriculum
from training.dataset import read_dataset
from training.encoding import MAX_SEQUENCE_TOKENS
from training.grpo_rollouts import TutorRollouts, pedagogy_reward
from training.jobs import (
    JobCancelled,
    LogFn,
    Progress,
    ProgressFn,
    StopFn,
    TrainJobConfig,
    TrainResult,
)
from training.publisher import PolicyPublisher
from training.reward_model.stage import STAGE, retrain_reward_model

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

ADAPTER_DIRNAME = "adapter"
STATE_NAME = "tutor_job_state.json"  # curriculum and history, saved in each checkpoint


# ---------------------------------------------------------------- progress, cancel, state


class JobCallback(TrainerCallback):
    """Reports progress after each step, stops on request, saves the curriculum and history
    beside TRL's checkpoint and publishes the new policy to the server."""

    def __init__(
        self,
        config: TrainJobConfig,
        rollouts: TutorRollouts,
        publisher: PolicyPublisher,
        history: list[dict[str, float]],
        on_progress: ProgressFn | None,
        should_stop: StopFn | None,
        log: LogFn,
    ) -> None:
        self.config = config
        self.rollouts = rollouts
        self.publisher = publisher
        self.history = history
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.log = log
        self.cancelled = False
        self.accelerator: Any = None  # set once the trainer exists (several processes)
        self._step_started = time.perf_counter()
        self._trainer_logs: dict[str, float] = {}
        self._pending: dict[str, float] | None = None  # the step ended, its logs not yet in

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.publisher.publish(model, state.global_step, self.accelerator)
        self._step_started = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        # with logging_steps=1 the trainer logs every step right after on_step_end
        for key, value in (logs or {}).items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._trainer_logs[key] = float(value)
        self._flush(state)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step_s = time.perf_counter() - self._step_started
        metrics = dict(self.rollouts.last.metrics)
        metrics["step_s"] = step_s
        metrics["optimizer_step_s"] = max(step_s - metrics.get("rollout_s", 0.0), 0.0)
        metrics["step"] = float(state.global_step)
        self._pending = metrics
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            control.should_save = True
            control.should_training_stop = True
        else:
            self.publisher.publish(model, state.global_step, self.accelerator)
        self._step_started = time.perf_counter()

    def _flush(self, state) -> None:
        metrics = self._pending
        if metrics is None:
            return
        for key in ("kl", "loss", "entropy", "grad_norm", "learning_rate"):
            if key in self._trainer_logs:
                metrics[key] = self._trainer_logs[key]
        self.history.append(metrics)
        self._pending = None
        self.log(
            f"step {state.global_step}/{state.max_steps}:"
            f" reward {metrics.get('reward_mean', 0):+.3f}"
            f" leak {metrics.get('leak_rate', 0):.2f} kl {metrics.get('kl', 0):.4f}"
            f" ({metrics['step_s']:.1f}s)"
        )
        if self.on_progress is not None:
            self.on_progress(
                Progress(
                    step=state.global_step,
                    total_steps=state.max_steps,
                    metrics=metrics,
                    message="cancelling" if self.cancelled else "training",
                )
            )

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self._flush(state)  # the step's logs came first; this is a safety net
        if folder.is_dir():
            save_state(folder, self.rollouts.curriculum, self.history, state_rank(args))
            if self.on_progress is not None:
                self.on_progress(
                    Progress(
                        step=state.global_step,
                        total_steps=state.max_steps,
                        metrics=self.history[-1] if self.history else {},
                        message="checkpoint saved",
                        checkpoint=str(folder),
                    )
                )

    def on_train_end(self, args, state, control, **kwargs):
        self._flush(state)


def state_rank(args: Any) -> int:
    return int(getattr(args, "process_index", 0) or 0)


def _state_name(rank: int) -> str:
    """Each process draws its own problems (its own curriculum): one state file per rank."""
    return STATE_NAME if rank == 0 else STATE_NAME.replace(".json", f".rank{rank}.json")


def save_state(
    folder: Path, curriculum: SelfEvolvingCurriculum, history: list[dict], rank: int = 0
) -> None:
    data = {"curriculum": curriculum.state_dict(), "history": history}
    target = folder / _state_name(rank)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(target)


def load_state(folder: Path, rank: int = 0) -> dict[str, Any] | None:
    try:
        return json.loads((folder / _state_name(rank)).read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- the job


def _load_policy(config: TrainJobConfig):
    from peft import LoraConfig, PeftModel

    path = resolve_model_path(config.base_model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if config.init_adapter:
        policy = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
        return policy, tokenizer, None
    peft_config = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return model, tokenizer, peft_config


def _load_reward_model(config: TrainJobConfig):
    if not config.reward_model or not config.mu:
        return None
    from training.reward_model.model import RewardModel

    model = RewardModel.load(config.reward_model)
    model.eval()
    return model


def _reward_model_stage(
    config: TrainJobConfig,
    records: Sequence[dict],
    work: Path,
    on_progress: ProgressFn | None,
    log: LogFn,
) -> TrainJobConfig:
    """Retrain the reward model from the window (:mod:`training.reward_model.stage`), reporting
    the stage's progress; returns the config with the reward model the job uses."""

    def report(status: str, **figures: Any) -> None:
        if on_progress is not None:
            on_progress(
                Progress(
                    step=0,
                    total_steps=config.steps,
                    stage=STAGE,
                    stage_report={"status": status, **figures},
                )
            )

    last = [0.0]

    def on_step(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 1.0:
            last[0] = now
            report("running", done=done, total=total)

    report("running", done=0, total=0)
    result = retrain_reward_model(
        records,
        work,
        init=config.reward_model,
        min_pairs=config.reward_model_min_pairs,
        epochs=config.reward_model_epochs,
        seed=config.seed,
        on_step=on_step,
        log=log,
    )
    figures = {k: v for k, v in result.to_dict().items() if k not in ("status", "path")}
    report(result.status, **{**figures, "done": result.steps, "total": result.steps})
    return replace(config, reward_model=result.path)


def train(
    config: TrainJobConfig,
    dataset_path: str,
    workdir: str,
    *,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    log: LogFn = print,
) -> TrainResult:
    """Run one retraining job (see :mod:`training.jobs`): train, checkpointing into
    ``workdir``, and resume from its last checkpoint if any."""
    from trl import GRPOConfig, GRPOTrainer

    if config.group_size < 2:
        raise ValueError("GRPO needs a group size of at least 2")
    if config.steps < 1 or config.problems_per_step < 1:
        raise ValueError("steps and problems per step must be at least 1")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    dataset = read_dataset(dataset_path)
    by_category = dataset.by_category()
    resume = get_last_checkpoint(str(work)) if any(work.glob("checkpoint-*")) else None
    process = PartialState()
    rank = process.process_index
    if config.retrain_reward_model:
        # The main process trains (or reads back) the reward model first; the others then read
        # its saved result.
        with process.main_process_first():
            config = _reward_model_stage(
                config,
                dataset.records,
                work,
                on_progress if process.is_main_process else None,
                log,
            )
    saved = load_state(Path(resume), rank) if resume else None
    if saved:
        curriculum = SelfEvolvingCurriculum.from_state(saved["curriculum"])
        history: list[dict[str, float]] = list(saved["history"])
        log(f"resuming from {resume} (step {len(history)})")
    else:
        curriculum = SelfEvolvingCurriculum(
            sorted(by_category), enabled=config.curriculum, seed=config.seed + rank
        )
        history = []

    torch.manual_seed(config.seed)
    model, tokenizer, peft_config = _load_policy(config)
    publisher = PolicyPublisher(
        config.endpoint.removesuffix("/v1"), work, f"job-{work.name}", api_key=config.api_key
    )
    rollouts = TutorRollouts(
        config,
        tokenizer,
        by_category,
        curriculum,
        publisher,
        reward_model=_load_reward_model(config),
        log=log,
        # Steps draw from the informative band of the student's measured solve rates.
        solve_rates=dataset.solve_rates,
    )
    use_cpu = not torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=str(work),
        # one group per micro-batch (the logits over a 49k vocabulary dominate memory); the
        # rollout function still sees all problems of the step at once
        per_device_train_batch_size=config.group_size,
        num_generations=config.group_size,
        gradient_accumulation_steps=config.problems_per_step,
        steps_per_generation=config.problems_per_step,
        max_steps=config.steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        beta=config.beta,
        temperature=config.temperature,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.checkpoint_every,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        use_cpu=use_cpu,
        bf16=not use_cpu and torch.cuda.is_bf16_supported(),
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        gradient_checkpointing=False,
        max_completion_length=MAX_SEQUENCE_TOKENS,
    )
    placeholders = HFDataset.from_dict(
        {"prompt": [f"slot {i}" for i in range(config.problems_per_step * config.steps)]}
    )
    if not process.is_main_process:  # one process reports and logs for all
        on_progress, log = None, (lambda _line: None)
    callback = JobCallback(config, rollouts, publisher, history, on_progress, should_stop, log)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[pedagogy_reward],
        args=args,
        train_dataset=placeholders,
        processing_class=tokenizer,
        peft_config=peft_config,
        rollout_func=rollouts,
        callbacks=[callback],
    )
    callback.accelerator = trainer.accelerator if trainer.accelerator.num_processes > 1 else None
    started_step = len(history)
    if on_progress is not None:
        on_progress(
            Progress(
                step=started_step,
                total_steps=config.steps,
                message="resuming" if resume else "starting",
                checkpoint=resume,
            )
        )
    try:
        trainer.train(resume_from_checkpoint=resume)
    finally:
        if trainer.accelerator.is_main_process:
            publisher.close()
    if callback.cancelled:
        raise JobCancelled(f"cancelled after step {trainer.state.global_step}")
    adapter_dir = work / ADAPTER_DIRNAME
    # The trained policy is a PeftModel (the adapter loaded, or peft_config applied by TRL):
    # this saves the adapter alone.
    cast("PeftModel", trainer.model).save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    metrics = final_metrics(history)
    (adapter_dir / "training_metrics.json").write_text(
        json.dumps({"config": config.to_dict(), "metrics": metrics, "history": history}, indent=1)
    )
    return TrainResult(
        adapter_dir=str(adapter_dir),
        steps_done=trainer.state.global_step,
        history=history,
        metrics=metrics,
        resumed_from=int(Path(resume).name.split("-")[-1]) if resume else None,
    )


def final_metrics(history: Sequence[dict[str, float]], tail: int = 3) -> dict[str, float]:
    """Means over the first and the last ``tail`` steps of the main curves, and throughput."""
    if not history:
        return {}
    out: dict[str, float] = {"steps": float(len(history))}
    first, last = history[:tail], history[-tail:]
    for key in ("reward_mean", "solve_rate", "leak_rate", "kl"):
        values_first = [h[key] for h in first if key in h]
        values_last = [h[key] for h in last if key in h]
        if values_first:
            out[f"{key}_first"] = sum(values_first) / len(values_first)
        if values_last:
            out[f"{key}_last"] = sum(values_last) / len(values_last)
    for key in ("dialogues_per_min", "optimizer_step_s", "step_s", "rollout_s"):
        values = [h[key] for h in history if key in h]
        if values:
            out[f"{key}_mean"] = sum(values) / len(values)
    return out
