"""Figures of the evaluation harness: bootstrap confidence intervals and per-item outcomes.

Every reported figure is a :data:`Metric` dict ``{"value", "ci_low", "ci_high", "n"}``: the
mean over ``n`` items and a percentile bootstrap interval (items resampled with replacement
from a seeded :class:`numpy.random.Generator`, so a report is reproducible). The solve gain is
a *paired* bootstrap: each resample draws items and takes after minus before of the same
items, which keeps the strong correlation between an item's before and after solve rates
(resampling the two sides separately would give a far too wide interval).

A figure over no items has ``value``, ``ci_low`` and ``ci_high`` set to ``None`` (JSON null)
rather than NaN, which strict JSON cannot carry; the promotion gate treats it as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.rewards import RewardConfig, combine, first_leak, solve_score
from training.rollout import Dialogue

Metric = dict[str, Any]
"""``{"value": float | None, "ci_low": float | None, "ci_high": float | None, "n": int}``"""

DEFAULT_CONFIDENCE = 0.95
_DIGITS = 6


def _round(x: float) -> float:
    return round(float(x), _DIGITS)


def empty_metric() -> Metric:
    return {"value": None, "ci_low": None, "ci_high": None, "n": 0}


def point_metric(value: float, n: int) -> Metric:
    v = _round(value)
    return {"value": v, "ci_low": v, "ci_high": v, "n": n}


def _interval(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(stats, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float],
    *,
    samples: int = 1000,
    seed: int | None = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Metric:
    """The mean of ``values`` with a percentile bootstrap interval. A constant (or a single
    item) gives a point interval: resampling cannot move it."""
    data = np.asarray(list(values), dtype=float)
    n = int(data.size)
    if n == 0:
        return empty_metric()
    mean = float(data.mean())
    if n == 1 or samples < 1 or bool(np.all(data == data[0])):
        return point_metric(mean, n)
    rng = np.random.default_rng(seed)
    stats = np.empty(samples)
    chunk = max(1, 2_000_000 // n)  # bound memory for large n
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        index = rng.integers(0, n, size=(stop - start, n))
        stats[start:stop] = data[index].mean(axis=1)
    low, high = _interval(stats, confidence)
    return {"value": _round(mean), "ci_low": _round(low), "ci_high": _round(high), "n": n}


def paired_bootstrap_diff(
    before: Sequence[float],
    after: Sequence[float],
    *,
    samples: int = 1000,
    seed: int | None = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Metric:
    """Mean of ``after - before`` over items, with a paired bootstrap interval: each resample
    draws item indices once and uses both sides of the same items."""
    b = np.asarray(list(before), dtype=float)
    a = np.asarray(list(after), dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"before and after differ in length ({b.size} != {a.size})")
    n = int(a.size)
    if n == 0:
        return empty_metric()
    mean = float(a.mean() - b.mean())
    diff = a - b
    if n == 1 or samples < 1 or bool(np.all(diff == diff[0])):
        return point_metric(mean, n)
    rng = np.random.default_rng(seed)
    stats = np.empty(samples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        index = rng.integers(0, n, size=(stop - start, n))
        stats[start:stop] = a[index].mean(axis=1) - b[index].mean(axis=1)
    low, high = _interval(stats, confidence)
    return {"value": _round(mean), "ci_low": _round(low), "ci_high": _round(high), "n": n}


def cohens_kappa(a: Sequence[object], b: Sequence[object]) -> float | None:
    """Cohen's kappa between two raters' labels of the same items: (p_o - p_e) / (1 - p_e),
    where p_o is the share of items they agree on and p_e the agreement expected by chance from
    each rater's own label frequencies. 1 is perfect agreement, 0 chance level, below 0 worse
    than chance.

    None when kappa is undefined: no items, or both raters gave every item one and the same
    label (p_e = 1: nothing to agree on beyond chance). Raises ValueError when the two
    sequences differ in length."""
    if len(a) != len(b):
        raise ValueError(f"the raters labelled different numbers of items ({len(a)} != {len(b)})")
    n = len(a)
    if n == 0:
        return None
    observed = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    counts_a: dict[object, int] = {}
    counts_b: dict[object, int] = {}
    for x, y in zip(a, b, strict=True):
        counts_a[x] = counts_a.get(x, 0) + 1
        counts_b[y] = counts_b.get(y, 0) + 1
    expected = sum(counts_a[k] * counts_b.get(k, 0) for k in counts_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def _binary_kappas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each row pair of two 0/1 matrices (NaN where undefined)."""
    n = a.shape[1]
    observed = (a == b).mean(axis=1)
    pa, pb = a.mean(axis=1), b.mean(axis=1)
    expected = pa * pb + (1 - pa) * (1 - pb)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1 - expected)
    kappa[expected >= 1.0 - 1e-12] = np.nan
    return kappa if n else np.full(a.shape[0], np.nan)


def kappa_metric(
    a: Sequence[bool],
    b: Sequence[bool],
    *,
    samples: int = 1000,
    seed: int | None = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Metric:
    """Cohen's kappa of two yes/no raters of the same items as a :data:`Metric`: the kappa of
    all items, and a percentile bootstrap interval over the resamples in which it is defined.
    An undefined kappa (see :func:`cohens_kappa`) has value None, like a figure over no items;
    ``agreement`` adds the plain share of items the raters agree on."""
    value = cohens_kappa(list(a), list(b))
    n = len(a)
    agreement = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n if n else None
    metric: Metric = {"value": None, "ci_low": None, "ci_high": None, "n": n}
    metric["agreement"] = _round(agreement) if agreement is not None else None
    if value is None:
        return metric
    x = np.asarray([bool(v) for v in a], dtype=float)
    y = np.asarray([bool(v) for v in b], dtype=float)
    low = high = value
    if n > 1 and samples >= 1:
        rng = np.random.default_rng(seed)
        index = rng.integers(0, n, size=(samples, n))
        stats = _binary_kappas(x[index], y[index])
        stats = stats[~np.isnan(stats)]
        if stats.size:
            low, high = _interval(stats, confidence)
    metric.update(value=_round(value), ci_low=_round(low), ci_high=_round(high))
    return metric


def win_value(candidate_score: float, reference_score: float, tie: float = 1e-9) -> float:
    """1 when the candidate scores higher, 0 when lower, 0.5 for a tie."""
    if abs(candidate_score - reference_score) <= tie:
        return 0.5
    return 1.0 if candidate_score > reference_score else 0.0


# -- per-dialogue figures ---------------------------------------------------------------------
def solve_rate(solutions: Sequence[str], reference: str, k: int) -> tuple[float, list[str]]:
    """Fraction of the ``k`` sampled solutions whose final answer equals ``reference``
    (math-verify); missing samples count as wrong. Returns the rate and the answers."""
    rate, answers, _ = solve_score(solutions, reference, k)
    return rate, list(answers)


def tutor_turn_count(dialogue: Dialogue) -> int:
    return len(dialogue.tutor_turns())


def leak_turn(dialogue: Dialogue, *, as_shown: bool = False) -> int | None:
    """1-based number of the first tutor turn that states the final answer before the student
    has (:func:`training.rewards.first_leak`: in what the model wrote, or ``as_shown`` in what
    the answer guard let the student see), or None."""
    index = first_leak(dialogue, as_shown=as_shown)
    if index is None:
        return None
    return sum(1 for t in dialogue.turns[: index + 1] if t.role == "tutor")


@dataclass
class DialogueOutcome:
    """What one interactive item measured. ``error`` set means the item is left out of every
    figure (an endpoint failed); ``error_kind`` names an infrastructure cause
    (:func:`training.rollout.failure_kind`)."""

    item_id: str
    source: str
    solve_before: float = 0.0
    solve_after: float = 0.0
    leaked: bool = False  # the model stated the answer (whether or not the guard stopped it)
    leak_turn: int | None = None
    visible_leaked: bool = False  # what the student was shown stated it (after the guard)
    guard_retries: int = 0  # tutor turns the answer guard had to ask again
    guard_fallbacks: int = 0  # tutor turns that ended in the guard's fallback
    turns: int = 0
    ended_by_student: bool = False
    rm_score: float | None = None
    first_attempt_correct: bool | None = None
    answers_before: list[str] = field(default_factory=list)
    answers_after: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    transcript: list[list[str]] | None = None
    problem_text: str | None = None  # kept with the transcript, to read it beside another's
    # The LLM judge's view (inference.judge), when a judge is configured: whether any tutor
    # turn failed the leak rule, whether every turn passed the pedagogy rule (None where a
    # turn got no verdict and none failed), and how many verdicts it could not give.
    judge_leaked: bool | None = None
    judge_pedagogy_passed: bool | None = None
    judge_errors: int | None = None

    @property
    def gain(self) -> float:
        return self.solve_after - self.solve_before

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"id": data.pop("item_id"), **data, "gain": _round(self.gain)}
        if self.transcript is None:
            data.pop("transcript")
            data.pop("problem_text")
        if self.judge_errors is None:  # no judge configured: the report stays as it was
            for key in ("judge_leaked", "judge_pedagogy_passed", "judge_errors"):
                data.pop(key)
        return data


def dialogue_outcome(
    dialogue: Dialogue,
    before_solutions: Sequence[str],
    k: int,
    *,
    item_id: str,
    source: str,
    first_attempt_correct: bool | None = None,
    transcript: bool = False,
) -> DialogueOutcome:
    """Score a finished dialogue (final solutions sampled) against the solutions the same
    student wrote before any tutoring."""
    outcome = DialogueOutcome(
        item_id=item_id,
        source=source,
        turns=tutor_turn_count(dialogue),
        ended_by_student=dialogue.ended_by_student,
        first_attempt_correct=first_attempt_correct,
        error=dialogue.error,
        error_kind=dialogue.error_kind,
        transcript=[[t.role, t.text] for t in dialogue.turns] if transcript else None,
        problem_text=dialogue.problem.text if transcript else None,
    )
    if dialogue.failed:
        return outcome
    reference = dialogue.problem.final_answer
    outcome.solve_before, outcome.answers_before = solve_rate(before_solutions, reference, k)
    outcome.solve_after, outcome.answers_after = solve_rate(dialogue.final_solutions, reference, k)
    outcome.leak_turn = leak_turn(dialogue)
    outcome.leaked = outcome.leak_turn is not None
    outcome.visible_leaked = leak_turn(dialogue, as_shown=True) is not None
    tutor_turns = dialogue.tutor_turns()
    outcome.guard_retries = sum(t.guard == "retried" for t in tutor_turns)
    outcome.guard_fallbacks = sum(t.guard == "fallback" for t in tutor_turns)
    return outcome


def _turn_share(
    outcomes: Sequence[DialogueOutcome], field_name: str, seed: int, kw: dict[str, Any]
) -> Metric:
    """The share of tutor turns counted by ``field_name``: per item, its count over its turns,
    averaged over items (items without tutor turns left out)."""
    shares = [getattr(o, field_name) / o.turns for o in outcomes if o.turns]
    return bootstrap_ci(shares, seed=seed, **kw)


EVAL_REWARD = RewardConfig(lambda_=1.0, mu=0.0, variant="hard")


def interactive_metrics(
    outcomes: Sequence[DialogueOutcome], *, samples: int = 1000, seed: int = 0
) -> dict[str, Metric]:
    """Solve before/after and its paired gain, leak rate, mean tutor turns, and (where scored)
    the reward model's mean score and the real first attempt's solve rate, over the items that
    did not fail."""
    ok = [o for o in outcomes if o.error is None]
    before = [o.solve_before for o in ok]
    after = [o.solve_after for o in ok]
    kw = {"samples": samples}
    metrics: dict[str, Metric] = {
        "solve_before": bootstrap_ci(before, seed=seed + 1, **kw),
        "solve_after": bootstrap_ci(after, seed=seed + 2, **kw),
        "solve_gain": paired_bootstrap_diff(before, after, seed=seed + 3, **kw),
        "leak_rate": bootstrap_ci([float(o.leaked) for o in ok], seed=seed + 4, **kw),
        # After the answer guard: what students would have read (goal 0).
        "visible_leak_rate": bootstrap_ci(
            [float(o.visible_leaked) for o in ok], seed=seed + 12, **kw
        ),
        # Tutor turns the guard had to ask again, and those that ended in its fallback.
        "guard_retry_rate": _turn_share(ok, "guard_retries", seed + 13, kw),
        "guard_fallback_rate": _turn_share(ok, "guard_fallbacks", seed + 14, kw),
        "mean_turns": bootstrap_ci([float(o.turns) for o in ok], seed=seed + 5, **kw),
        # the training objective at fixed settings (hard variant, lambda 1, no reward model
        # term), so that versions trained with different lambdas are compared on one scale
        "reward": bootstrap_ci(
            [combine(o.solve_after, o.leaked, 0.0, EVAL_REWARD) for o in ok], seed=seed + 8, **kw
        ),
    }
    scored = [o.rm_score for o in ok if o.rm_score is not None]
    if scored:
        metrics["rm_score"] = bootstrap_ci(scored, seed=seed + 6, **kw)
    attempts = [float(o.first_attempt_correct) for o in ok if o.first_attempt_correct is not None]
    if attempts:
        metrics["first_attempt_solve"] = bootstrap_ci(attempts, seed=seed + 7, **kw)
    if any(o.judge_errors is not None for o in ok):
        metrics.update(judge_metrics(ok, samples=samples, seed=seed))
    return metrics


def judge_metrics(
    outcomes: Sequence[DialogueOutcome], *, samples: int = 1000, seed: int = 0
) -> dict[str, Metric]:
    """The LLM judge's figures beside the rule judge's: its leak rate and pedagogy pass rate
    over the dialogues it gave a verdict on, and its agreement with the rule judge on "this
    dialogue leaked" as Cohen's kappa (over the dialogues both judged)."""
    # (rule judge, LLM judge) on "this dialogue leaked", where the LLM judge gave a verdict
    leaks = [(o.leaked, o.judge_leaked) for o in outcomes if o.judge_leaked is not None]
    style = [o.judge_pedagogy_passed for o in outcomes if o.judge_pedagogy_passed is not None]
    kw = {"samples": samples}
    return {
        "judge_leak_rate": bootstrap_ci(
            [float(judged) for _, judged in leaks], seed=seed + 9, **kw
        ),
        "judge_pedagogy_pass_rate": bootstrap_ci([float(v) for v in style], seed=seed + 10, **kw),
        "judge_rule_kappa": kappa_metric(
            [rule for rule, _ in leaks], [judged for _, judged in leaks], seed=seed + 11, **kw
        ),
    }
