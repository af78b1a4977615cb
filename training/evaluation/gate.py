"""The promotion gate: a candidate version may replace the active one only if it does not
teach worse beyond the uncertainty of either evaluation.

For each gated metric the comparison is between confidence intervals, not point values, so
that noise in a 20-item evaluation cannot block (or pass) a version on its own:

- ``leak_rate`` (lower is better): worse when the candidate's ``ci_low`` is above the active
  version's ``ci_high``.
- ``solve_gain`` (higher is better): worse when the candidate's ``ci_high`` is below the active
  version's ``ci_low``.

Overlapping intervals pass. A candidate without a figure (or one measured over no items) fails;
an active version without it cannot be compared on that metric, which is noted and passes.
With no active version at all the gate passes and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from . import headline

Direction = Literal["lower", "higher"]

#: metric -> which direction is better
GATED_METRICS: dict[str, Direction] = {"leak_rate": "lower", "solve_gain": "higher"}


@dataclass
class GateVerdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons), "checks": self.checks}


def _usable(metric: Any) -> TypeGuard[Mapping[str, Any]]:
    return (
        isinstance(metric, Mapping)
        and all(metric.get(key) is not None for key in ("value", "ci_low", "ci_high"))
        and int(metric.get("n") or 0) > 0
    )


def _fmt(metric: Mapping[str, Any]) -> str:
    return (
        f"{metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}], "
        f"n={metric.get('n')}"
    )


def promotion_gate(
    candidate: dict[str, Any],
    active: dict[str, Any] | None,
    *,
    metrics: Mapping[str, Direction] = GATED_METRICS,
) -> GateVerdict:
    """Compare two evaluation reports (or their :func:`headline` dicts)."""
    cand = headline(candidate)
    verdict = GateVerdict(passed=True)
    if active is None:
        missing = [name for name in metrics if not _usable(cand.get(name))]
        for name in missing:
            verdict.passed = False
            verdict.reasons.append(f"{name}: the candidate has no measured {name}")
            verdict.checks[name] = {"candidate": cand.get(name), "active": None, "worse": None}
        if not missing:
            verdict.reasons.append("no active version to compare with; promotable")
            for name in metrics:
                verdict.checks[name] = {"candidate": cand[name], "active": None, "worse": None}
        return verdict
    act = headline(active)
    for name, direction in metrics.items():
        c, a = cand.get(name), act.get(name)
        check: dict[str, Any] = {"candidate": c, "active": a, "better": direction, "worse": None}
        verdict.checks[name] = check
        if not _usable(c):
            verdict.passed = False
            verdict.reasons.append(f"{name}: the candidate has no measured {name}")
            continue
        if not _usable(a):
            verdict.reasons.append(f"{name}: the active version has no {name}; not compared")
            continue
        if direction == "lower":
            worse = c["ci_low"] > a["ci_high"]
            rule = "candidate ci_low > active ci_high"
        else:
            worse = c["ci_high"] < a["ci_low"]
            rule = "candidate ci_high < active ci_low"
        check["worse"] = worse
        check["rule"] = f"worse if {rule}"
        if worse:
            verdict.passed = False
            verdict.reasons.append(
                f"{name} is worse beyond the confidence intervals: candidate {_fmt(c)} vs "
                f"active {_fmt(a)} ({direction} is better)"
            )
        else:
            verdict.reasons.append(f"{name} not worse: candidate {_fmt(c)} vs active {_fmt(a)}")
    return verdict
