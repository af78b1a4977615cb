"""The tutor's reward for one rollout, and GRPO's group-relative advantages.

Following Dinucu-Jianu et al. (2025)::

    r = solve - lambda * penalised + mu * rm_score          (soft variant)
    r = (-lambda if penalised else solve) + mu * rm_score    (hard variant)

``solve`` is the mean over the student's k post-dialogue solutions of "the final answer equals
the reference" (math-verify, :func:`pedagogy.grading.check_answer`). ``penalised`` is true when
the tutor leaked the answer -- decided by the model-free check
:func:`pedagogy.judges.reveals_answer` on each visible tutor turn, given the student turns
before it, so confirming an answer the student already stated is not a leak -- or when an
optional pedagogy judge (e.g. an LLM asked about style) rejects the dialogue. In the hard
variant a rejected dialogue gets no credit for the student's solve at all, so leaking can never
pay; in the soft variant it costs lambda. ``rm_score`` comes from an optional learned pedagogy
reward model.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from inference.judge import RULES, JudgeConfig, JudgeError, Verdict, ajudge_turn
from pedagogy.grading import is_correct
from pedagogy.judges import reveals_answer
from training.rollout import Dialogue
from training.simulated_student import extract_final_answer

StyleJudge = Callable[[Dialogue], bool]
"""Returns True when it rejects the dialogue (style against pedagogy). Synchronous: run an
async LLM judge beforehand and look its verdict up here."""

RewardModel = Callable[[Dialogue], float]

logger = logging.getLogger(__name__)


class LLMStyleJudge:
    """The :data:`StyleJudge` of the reward, over the LLM judge (:mod:`inference.judge`): it
    rejects a dialogue when any tutor turn fails either rule (``leak``: the answer or key
    steps handed over; ``pedagogy``: long-winded, doing the student's work, off the problem).

    Judge errors (timeout, unreachable server, an answer that is not a verdict) count as *not
    judged*, not as rejected: a verdict the judge could not give says nothing about the tutor,
    and penalising it would teach the policy the judge server's outages. Such a turn is
    logged and counted in ``errors``; the dialogue is rejected only by the verdicts that came
    back (the rule judge's leak check in :func:`score_dialogue` still applies to every turn).

    Call :meth:`prepare` (or :meth:`aprepare`) on a batch first: it asks about every tutor
    turn at once, with at most ``concurrency`` calls in flight. Calling the judge on a dialogue
    that was not prepared judges it there and then (synchronously, outside an event loop).
    """

    def __init__(
        self, config: JudgeConfig, *, rules: Sequence[str] = RULES, concurrency: int = 8
    ) -> None:
        self.config = config
        self.rules = tuple(rules)
        self.concurrency = max(1, concurrency)
        # id(dialogue) -> (the dialogue, which keeps its id from being reused; rejected)
        self._verdicts: dict[int, tuple[Dialogue, bool]] = {}
        self.judged = 0  # tutor turns with every rule's verdict
        self.errors = 0  # rule verdicts the judge could not give
        self.rejected = 0  # dialogues rejected

    async def aprepare(self, dialogues: Iterable[Dialogue]) -> None:
        semaphore = asyncio.Semaphore(self.concurrency)

        async def one(dialogue: Dialogue) -> None:
            history = dialogue.history()
            rejected = False
            for position, turn in enumerate(dialogue.turns):
                if turn.role != "tutor":
                    continue
                async with semaphore:
                    verdicts = await ajudge_turn(
                        self.config,
                        problem=dialogue.problem.text,
                        final_answer=dialogue.problem.final_answer,
                        history=history[:position],
                        reply=turn.text,
                        rules=self.rules,
                    )
                rejected = self._count(dialogue, verdicts) or rejected
                if rejected:
                    break  # one failed turn rejects the dialogue: ask no more
            self.rejected += rejected
            self._verdicts[id(dialogue)] = (dialogue, rejected)

        await asyncio.gather(*(one(d) for d in dialogues if not d.failed))

    def prepare(self, dialogues: Iterable[Dialogue]) -> None:
        """:meth:`aprepare` from synchronous code (not from a running event loop)."""
        asyncio.run(self.aprepare(list(dialogues)))

    def _count(self, dialogue: Dialogue, verdicts: dict[str, Verdict | JudgeError]) -> bool:
        failed = False
        for rule, verdict in verdicts.items():
            if isinstance(verdict, JudgeError):
                self.errors += 1
                logger.warning(
                    "the LLM judge gave no %s verdict on a turn of problem %s (not judged): %s",
                    rule,
                    dialogue.problem.problem_id,
                    verdict,
                )
            elif not verdict.passed:
                failed = True
        if not any(isinstance(v, JudgeError) for v in verdicts.values()):
            self.judged += 1
        return failed

    def __call__(self, dialogue: Dialogue) -> bool:
        found = self._verdicts.get(id(dialogue))
        if found is None or found[0] is not dialogue:
            self.prepare([dialogue])
            found = self._verdicts.get(id(dialogue), (dialogue, False))
        return found[1]

    def stats(self) -> dict[str, float]:
        return {
            "judge_turns": float(self.judged),
            "judge_errors": float(self.errors),
            "judge_rejected": float(self.rejected),
        }


@dataclass(frozen=True)
class RewardConfig:
    lambda_: float = 1.0
    mu: float = 0.0
    variant: Literal["hard", "soft"] = "hard"
    k: int = 4  # final solutions sampled per dialogue

    def __post_init__(self) -> None:
        if self.variant not in ("hard", "soft"):
            raise ValueError(f"variant must be 'hard' or 'soft', not {self.variant!r}")
        if self.k < 1:
            raise ValueError("k must be at least 1")


@dataclass(frozen=True)
class RewardBreakdown:
    solve_rate: float
    leaked: bool
    judge_rejected: bool
    rm_score: float
    total: float
    leak_turn: int | None = None  # index in dialogue.turns of the first leaking tutor turn
    answers: tuple[str, ...] = ()
    solved: tuple[bool, ...] = ()
    failed: bool = False  # the rollout failed; leave it out of the GRPO batch
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def penalised(self) -> bool:
        return self.leaked or self.judge_rejected


def solve_score(
    solutions: Sequence[str], reference: str, k: int | None = None
) -> tuple[float, tuple[str, ...], tuple[bool, ...]]:
    """Mean correctness over (the first ``k`` of) ``solutions``; a missing sample counts as
    wrong, so a server that returned fewer than k choices cannot inflate the rate."""
    used = list(solutions[:k] if k else solutions)
    answers = tuple(extract_final_answer(s) for s in used)
    solved = tuple(is_correct(a, reference) for a in answers)
    denominator = max(k or len(used), 1)
    return sum(solved) / denominator, answers, solved


def first_leak(dialogue: Dialogue, *, as_shown: bool = False) -> int | None:
    """Index of the first tutor turn that states the answer before the student has.

    By default in what the model wrote (the trained sample), so a turn whose leak the answer
    guard stopped counts too: the student never saw it, but the model still gave the answer
    away. ``as_shown`` judges only what the student was shown (the student-visible leak)."""
    student_texts: list[str] = []
    for index, turn in enumerate(dialogue.turns):
        if turn.role == "student":
            student_texts.append(turn.text)
        elif (turn.model_leaked and not as_shown) or reveals_answer(
            turn.text,
            dialogue.problem.final_answer,
            problem_text=dialogue.problem.text,
            student_texts=student_texts,
            when_uncheckable=True,
        ):
            return index
    return None


def combine(solve: float, penalised: bool, rm_score: float, config: RewardConfig) -> float:
    base = solve
    if penalised:
        base = -config.lambda_ if config.variant == "hard" else solve - config.lambda_
    return base + config.mu * rm_score


def score_dialogue(
    dialogue: Dialogue,
    config: RewardConfig,
    *,
    style_judge: StyleJudge | None = None,
    reward_model: RewardModel | None = None,
) -> RewardBreakdown:
    """The reward breakdown of one rollout (with its final solutions already sampled)."""
    if dialogue.failed:
        return RewardBreakdown(
            solve_rate=0.0, leaked=False, judge_rejected=False, rm_score=0.0, total=0.0,
            failed=True,
        )  # fmt: skip
    solve, answers, solved = solve_score(
        dialogue.final_solutions, dialogue.problem.final_answer, config.k
    )
    leak_turn = first_leak(dialogue)
    leaked = leak_turn is not None
    judge_rejected = bool(style_judge(dialogue)) if style_judge is not None else False
    rm_score = float(reward_model(dialogue)) if reward_model is not None and config.mu else 0.0
    return RewardBreakdown(
        solve_rate=solve,
        leaked=leaked,
        judge_rejected=judge_rejected,
        rm_score=rm_score,
        total=combine(solve, leaked or judge_rejected, rm_score, config),
        leak_turn=leak_turn,
        answers=answers,
        solved=solved,
    )


def group_advantages(rewards: Sequence[float], eps: float = 1e-6) -> list[float]:
    """GRPO's advantages for one group: (r - mean) / (std + eps), with the population std.
    A group whose rewards are all equal gets zeros (no signal)."""
    if not rewards:
        return []
    mean = sum(rewards) / len(rewards)
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))
    return [(r - mean) / (std + eps) for r in rewards]


def batch_advantages(
    groups: Sequence[int], rewards: Sequence[float], eps: float = 1e-6
) -> list[float]:
    """Advantages for a flat batch where ``groups[i]`` names the group of ``rewards[i]``."""
    if len(groups) != len(rewards):
        raise ValueError("groups and rewards differ in length")
    by_group: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    out = [0.0] * len(rewards)
    for indices in by_group.values():
        for i, a in zip(indices, group_advantages([rewards[i] for i in indices], eps), strict=True):
            out[i] = a
    return out


def summarize(breakdowns: Sequence[RewardBreakdown]) -> dict[str, float]:
    """Batch figures for progress reports, over the rollouts that did not fail."""
    ok = [b for b in breakdowns if not b.failed]
    n = len(ok)

    def mean(values: list[float]) -> float:
        return sum(values) / n if n else 0.0

    return {
        "rollouts": float(len(breakdowns)),
        "failed": float(len(breakdowns) - n),
        "reward_mean": mean([b.total for b in ok]),
        "solve_rate": mean([b.solve_rate for b in ok]),
        "leak_rate": mean([float(b.leaked) for b in ok]),
        "judge_reject_rate": mean([float(b.judge_rejected) for b in ok]),
        "rm_score_mean": mean([b.rm_score for b in ok]),
    }
