import json

import pytest

from training.evaluation import headline
from training.evaluation.gate import GateVerdict, promotion_gate

pytestmark = pytest.mark.unit


def m(value, low, high, n=20):
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def report(leak, gain, **extra):
    """A report of run_evaluation's shape with the two gated figures."""
    metrics = {"leak_rate": leak, "solve_gain": gain, "solve_after": m(0.5, 0.3, 0.7)}
    return {
        "config": {},
        "tasks": {
            "interactive": {"n": 20, "metrics": metrics, "items": []},
            "solving": {"n": 20, "metrics": {"accuracy": m(0.4, 0.2, 0.6)}, "items": []},
            **extra,
        },
    }


ACTIVE = report(leak=m(0.10, 0.00, 0.20), gain=m(0.30, 0.15, 0.45))


def test_headline_flattens_the_tasks_and_keeps_flat_dicts():
    flat = headline(ACTIVE)
    assert set(flat) == {"leak_rate", "solve_gain", "solve_after", "accuracy"}
    assert flat["accuracy"]["value"] == 0.4
    assert headline(flat) == flat


def test_no_active_version_passes_and_says_so():
    verdict = promotion_gate(ACTIVE, None)
    assert isinstance(verdict, GateVerdict) and verdict.passed
    assert "no active version" in verdict.reasons[0]
    json.dumps(verdict.to_dict())


def test_worse_leak_beyond_the_intervals_fails():
    candidate = report(leak=m(0.50, 0.30, 0.70), gain=m(0.30, 0.15, 0.45))
    verdict = promotion_gate(candidate, ACTIVE)
    assert not verdict.passed
    assert verdict.checks["leak_rate"]["worse"] is True
    assert verdict.checks["solve_gain"]["worse"] is False
    assert any(r.startswith("leak_rate is worse") for r in verdict.reasons)


def test_worse_gain_beyond_the_intervals_fails():
    candidate = report(leak=m(0.10, 0.00, 0.20), gain=m(0.0, -0.1, 0.1))
    verdict = promotion_gate(candidate, ACTIVE)
    assert not verdict.passed
    assert verdict.checks["solve_gain"]["worse"] is True
    assert any(r.startswith("solve_gain is worse") for r in verdict.reasons)


def test_overlapping_intervals_pass_even_when_the_point_value_is_worse():
    # Leak 0.25 > 0.10 and gain 0.2 < 0.3, but the intervals overlap: noise, not evidence.
    candidate = report(leak=m(0.25, 0.10, 0.40), gain=m(0.20, 0.05, 0.35))
    verdict = promotion_gate(candidate, ACTIVE)
    assert verdict.passed, verdict.reasons
    assert verdict.checks["leak_rate"]["worse"] is False
    assert all("not worse" in r for r in verdict.reasons)


def test_touching_intervals_are_not_worse():
    candidate = report(leak=m(0.3, 0.20, 0.4), gain=m(0.1, 0.0, 0.15))
    assert promotion_gate(candidate, ACTIVE).passed


def test_better_candidate_passes_with_headline_dicts():
    candidate = report(leak=m(0.0, 0.0, 0.0), gain=m(0.6, 0.5, 0.7))
    verdict = promotion_gate(headline(candidate), headline(ACTIVE))
    assert verdict.passed


@pytest.mark.parametrize("active", [ACTIVE, None])
def test_a_candidate_missing_a_metric_fails(active):
    candidate = report(leak=m(0.1, 0.0, 0.2), gain=m(0.3, 0.2, 0.4))
    del candidate["tasks"]["interactive"]["metrics"]["solve_gain"]
    verdict = promotion_gate(candidate, active)
    assert not verdict.passed
    assert any("candidate has no measured solve_gain" in r for r in verdict.reasons)


def test_a_candidate_measured_over_no_items_fails():
    empty = {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    candidate = report(leak=empty, gain=m(0.3, 0.2, 0.4))
    verdict = promotion_gate(candidate, ACTIVE)
    assert not verdict.passed and "leak_rate" in verdict.reasons[0]


def test_an_active_version_without_a_metric_is_not_compared_on_it():
    active = report(leak=m(0.1, 0.0, 0.2), gain=m(0.3, 0.2, 0.4))
    del active["tasks"]["interactive"]["metrics"]["leak_rate"]
    candidate = report(leak=m(0.9, 0.8, 1.0), gain=m(0.3, 0.2, 0.4))
    verdict = promotion_gate(candidate, active)
    assert verdict.passed
    assert any("active version has no leak_rate" in r for r in verdict.reasons)
