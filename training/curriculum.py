"""Self-Evolving Curriculum (Chen et al., 2025): which problem categories to train on next.

Each category (a skill, a difficulty level, ...) is an arm of a non-stationary bandit. After a
batch, an arm's value moves toward the mean absolute GRPO advantage of that category's
rollouts in the batch, by TD(0) with learning rate alpha::

    Q(c) <- Q(c) + alpha * (mean |A| over the batch's rollouts of c - Q(c))

A large |A| means the group's rewards differed, i.e. the problems are neither solved always nor
never: where learning happens. Categories are drawn by a Boltzmann (softmax) distribution over
Q with temperature tau; with ``enabled=False`` they are drawn uniformly (the switch-off). The
random generator's state is part of :meth:`state_dict`, so a resumed job draws exactly what the
uninterrupted one would have.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class SelfEvolvingCurriculum:
    def __init__(
        self,
        categories: Iterable[str],
        *,
        alpha: float = 0.5,
        temperature: float = 1.0,
        enabled: bool = True,
        seed: int = 0,
        initial_value: float = 0.0,
    ) -> None:
        names = list(dict.fromkeys(categories))
        if not names:
            raise ValueError("at least one category is needed")
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        if temperature <= 0.0:
            raise ValueError("temperature must be positive")
        self.categories = names
        self.alpha = alpha
        self.temperature = temperature
        self.enabled = enabled
        self.seed = seed
        self.values: dict[str, float] = {c: float(initial_value) for c in names}
        self.counts: dict[str, int] = {c: 0 for c in names}  # updates received, for reports
        self._rng = random.Random(seed)

    def probabilities(self, available: Iterable[str] | None = None) -> dict[str, float]:
        """Sampling probabilities over ``available`` categories (default: all)."""
        names = self.categories if available is None else [c for c in available]
        unknown = [c for c in names if c not in self.values]
        if unknown:
            raise KeyError(f"unknown categories: {unknown}")
        if not names:
            raise ValueError("no category to sample from")
        if not self.enabled:
            return {c: 1.0 / len(names) for c in names}
        logits = [self.values[c] / self.temperature for c in names]
        top = max(logits)
        weights = [math.exp(x - top) for x in logits]
        total = sum(weights)
        return {c: w / total for c, w in zip(names, weights, strict=True)}

    def sample_categories(self, n: int, available: Iterable[str] | None = None) -> list[str]:
        probs = self.probabilities(available)
        names = list(probs)
        return self._rng.choices(names, weights=[probs[c] for c in names], k=n)

    def sample(self, problems_by_category: Mapping[str, Sequence[T]], n: int) -> list[T]:
        """``n`` problems: a category per slot from the bandit, then a problem of it uniformly
        (without repeats within the batch until the category runs out)."""
        available = [c for c in self.categories if problems_by_category.get(c)]
        chosen = self.sample_categories(n, available)
        pools: dict[str, list[T]] = {}
        out: list[T] = []
        for category in chosen:
            pool = pools.get(category)
            if not pool:
                pool = list(problems_by_category[category])
                self._rng.shuffle(pool)
                pools[category] = pool
            out.append(pool.pop())
        return out

    def update(self, category_advantages: Mapping[str, Iterable[float]]) -> dict[str, float]:
        """TD(0) step for each category that had rollouts in the batch; others keep their
        value. Returns the rewards (mean |A|) used."""
        rewards: dict[str, float] = {}
        for category, advantages in category_advantages.items():
            values = [abs(float(a)) for a in advantages]
            if not values:
                continue
            if category not in self.values:
                raise KeyError(f"unknown category {category!r}")
            reward = sum(values) / len(values)
            self.values[category] += self.alpha * (reward - self.values[category])
            self.counts[category] += 1
            rewards[category] = reward
        return rewards

    def update_from_batch(
        self, categories: Sequence[str], advantages: Sequence[float]
    ) -> dict[str, float]:
        """:meth:`update` from a flat batch: ``categories[i]`` is the category of the rollout
        whose advantage is ``advantages[i]``."""
        if len(categories) != len(advantages):
            raise ValueError("categories and advantages differ in length")
        grouped: dict[str, list[float]] = {}
        for category, advantage in zip(categories, advantages, strict=True):
            grouped.setdefault(category, []).append(advantage)
        return self.update(grouped)

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, generator included."""
        version, internal, gauss = self._rng.getstate()
        return {
            "categories": list(self.categories),
            "alpha": self.alpha,
            "temperature": self.temperature,
            "enabled": self.enabled,
            "seed": self.seed,
            "values": dict(self.values),
            "counts": dict(self.counts),
            "rng": [version, list(internal), gauss],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SelfEvolvingCurriculum:
        curriculum = cls(
            state["categories"],
            alpha=state["alpha"],
            temperature=state["temperature"],
            enabled=state["enabled"],
            seed=state["seed"],
        )
        curriculum.values = {c: float(state["values"][c]) for c in curriculum.categories}
        curriculum.counts = {
            c: int(state.get("counts", {}).get(c, 0)) for c in curriculum.categories
        }
        version, internal, gauss = state["rng"]
        curriculum._rng.setstate((version, tuple(internal), gauss))
        return curriculum
