"""What one retraining job is, as plain Python (no Django, no torch): its configuration, its
progress reports and how it ends. The job itself is :func:`training.grpo.train`; the Celery task
in ``tutor/retraining/tasks.py`` is a thin adapter around it.

A job reads a dataset file (problems exported from the logs, see :mod:`training.dataset`),
trains a LoRA adapter with multi-turn GRPO (:mod:`training.grpo`) against an OpenAI-compatible
vLLM server that serves the policy's adapter for rollouts, checkpoints into ``workdir`` every
``checkpoint_every`` steps and, when called again with the same ``workdir`` (a worker was
killed, the task was redelivered), resumes from the last checkpoint.

A step whose rollouts failed for infrastructure reasons (the model server unreachable, timing
out, answering 5xx, not serving the policy) beyond ``max_failed_rollouts`` is rolled out again
up to ``rollout_retries`` times, with a growing pause; then the job stops with
:class:`training.rollout.InfrastructureFailure` naming the count and the first cause, rather
than train on rewards the server decided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal


class JobCancelled(Exception):
    """Raised out of :func:`training.grpo.train` when ``should_stop()`` turned true; the last
    checkpoint stays on disk."""


@dataclass
class TrainJobConfig:
    """What an admin chooses for a job, plus where the servers are."""

    base_model: str = "default"  # HF folder or hub id of the base weights
    init_adapter: str | None = None  # LoRA folder to continue from (the base version's adapter)
    endpoint: str = "http://127.0.0.1:8001/v1"  # vLLM with --enable-lora, for rollouts
    student_model: str = "smollm2-135m-instruct"  # served name of the simulated student
    steps: int = 10
    problems_per_step: int = 2
    group_size: int = 4
    learning_rate: float = 2e-5
    lambda_: float = 1.0
    mu: float = 0.0
    variant: Literal["hard", "soft"] = "hard"  # training.rewards.RewardConfig.variant
    beta: float = 0.04  # KL to the reference policy
    seed: int = 0
    max_turns: int = 2
    k: int = 2
    lora_rank: int = 16
    lora_alpha: int = 32
    checkpoint_every: int = 1
    curriculum: bool = True
    reward_model: str | None = None
    max_tokens: int = 128
    temperature: float = 0.7  # the serving temperature (TUTOR_TEMPERATURE)
    concurrency: int = 8
    hidden_planning: bool = False  # the tutor plans in <think> tags the student never sees
    # Rollouts pass every tutor turn through the answer guard, as the chat socket does: the
    # simulated student sees what a student would (the trained sample stays the model's own
    # first attempt, and a leak the guard stopped is still penalised). The guard's retries per
    # turn; None: no guard.
    guard_retries: int | None = 2
    # A step may lose this share of its rollouts to the infrastructure (those are left out of
    # its advantages); beyond it the step is rolled out again, then the job fails.
    max_failed_rollouts: float = 0.1
    rollout_retries: int = 1
    rollout_retry_seconds: float = 2.0  # doubled after each retry
    # The vLLM server's --api-key, sent with rollouts and adapter loads; never stored.
    api_key: str | None = field(default=None, repr=False)
    # The LLM judge as the reward's style judge (training.rewards.LLMStyleJudge): the options of
    # inference.judge.JudgeConfig (base_url, model, api_key, timeout, max_tokens, ...). None:
    # off, only the rule judge penalises. Its api_key is never stored either.
    judge: dict[str, Any] | None = None
    # The informative band (training.calibration): steps draw only problems whose calibrated
    # solve rate lies in [band_low, band_high] while enough of them exist; problems without a
    # rate stay eligible.
    band_low: float = 0.01
    band_high: float = 0.60
    # The simulated student may use calc() (training.calculator) in its final solutions.
    calculator: bool = False
    # Retrain the reward model from the window's ratings and blocked attempts before GRPO
    # (training.reward_model.stage), starting from ``reward_model``; it counts with mu > 0.
    retrain_reward_model: bool = False
    reward_model_min_pairs: int = 20
    reward_model_epochs: int = 2

    def to_dict(self) -> dict[str, Any]:
        """Every option but the API keys (the dict is stored on the job and in checkpoints)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}
        if self.judge is not None:
            data["judge"] = {k: v for k, v in self.judge.items() if k != "api_key"}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainJobConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(unknown)}")
        return cls(**data)


@dataclass
class Progress:
    """Reported after every optimiser step (and once at start, step = resumed step), and
    during a stage that runs before the steps."""

    step: int
    total_steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    checkpoint: str | None = None  # set when this step wrote a checkpoint
    # A stage before the steps (the reward model's retraining): its name and what it reports
    # (status, done, total, figures); step, total_steps and metrics are then left alone.
    stage: str | None = None
    stage_report: dict[str, Any] | None = None


@dataclass
class TrainResult:
    adapter_dir: str
    steps_done: int
    history: list[dict[str, float]]
    metrics: dict[str, float]
    resumed_from: int | None = None


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]
LogFn = Callable[[str], None]
