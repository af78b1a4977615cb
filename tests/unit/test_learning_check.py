"""The learning check's own logic: the band's problems from a calibration file, the training
curves, and the verdict on its three goals."""

import json
from argparse import Namespace

import pytest

from benchmarks.learning_check import band_problems, curves_table, generated_from_id, verdict
from training.problem_generator import generate_problems

pytestmark = pytest.mark.unit


def metric(value, low, high, n=100):
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def pushes(base_rate, adapter_rate, errors=0):
    def entry(rate):
        return {"model_leak_per_reply": {"rate": rate, "k": 0, "n": 40}, "errors": errors}

    return {"base": entry(base_rate), "adapter": entry(adapter_rate)}


def test_generated_problems_come_back_from_their_ids():
    for problem in generate_problems(20, seed=3):
        again = generated_from_id(problem.problem_id)
        assert (again.text, again.final_answer) == (problem.text, problem.final_answer)


def test_band_problems_split_by_the_calibration_file(tmp_path):
    generated = generate_problems(40, seed=0)
    rates = [0.0, 0.125, 0.5, 0.75, None]
    path = tmp_path / "calibration.jsonl"
    rows = [
        {"problem_id": p.problem_id, "solve_rate": rates[i % len(rates)], "heldout": p.heldout}
        for i, p in enumerate(generated)
    ]
    rows.append({"problem_id": "mathdial:7", "solve_rate": 0.25, "heldout": True})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = Namespace(calibration=str(path), band_low=0.01, band_high=0.6, problems=200, limit=100)
    train, heldout = band_problems(args)
    in_band = [
        (p, r["solve_rate"])
        for p, r in zip(generated, rows, strict=False)
        if r["solve_rate"] in (0.125, 0.5)
    ]
    assert [line["problem_id"] for line in train] == [
        p.problem_id for p, _ in in_band if not p.heldout
    ]
    assert [line["solve_rate"] for line in train] == [r for p, r in in_band if not p.heldout]
    assert [p.problem_id for p in heldout] == [p.problem_id for p, _ in in_band if p.heldout]
    assert heldout and train
    # The limits cut each side.
    train, heldout = band_problems(Namespace(**{**vars(args), "problems": 1, "limit": 1}))
    assert (len(train), len(heldout)) == (1, 1)


def test_the_curves_print_one_row_a_step():
    table = curves_table(
        [{"step": 1, "reward_mean": 0.25, "solve_rate": 0.5, "kl": 0.0}, {"step": 2}]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["step", "reward_mean", "solve_rate", "leak_rate", "kl"]
    assert lines[1].split() == ["1", "0.250", "0.500", "-", "0.000"]
    assert lines[2].split() == ["2", "-", "-", "-", "-"]


def test_the_verdict_needs_all_three_goals_on_the_full_set():
    base = {"solve_gain": metric(0.02, -0.03, 0.07), "win_rate": metric(0.4, 0.3, 0.5)}
    good = {"solve_gain": metric(0.20, 0.12, 0.28), "win_rate": metric(0.5, 0.4, 0.6)}
    assert verdict(base, good, pushes(0.3, 0.1), 100) == (
        "PASS",
        {
            "solve_gain_above_with_separate_intervals": True,
            "push_model_leak_lower": True,
            "win_rate_higher": True,
        },
    )
    # Overlapping intervals: not enough, however much higher the value.
    overlapping = {**good, "solve_gain": metric(0.20, 0.05, 0.35)}
    result, goals = verdict(base, overlapping, pushes(0.3, 0.1), 100)
    assert result == "FAIL" and not goals["solve_gain_above_with_separate_intervals"]
    assert verdict(base, good, pushes(0.1, 0.1), 100)[0] == "FAIL"
    assert (
        verdict(base, {**good, "win_rate": metric(0.4, 0.3, 0.5)}, pushes(0.3, 0.1), 100)[0]
        == "FAIL"
    )
    # Fewer items than asked, different counts, or failed pushes: not a measurement.
    assert verdict(base, good, pushes(0.3, 0.1), 120)[0] == "INVALID"
    fewer = {**good, "solve_gain": metric(0.2, 0.12, 0.28, n=99)}
    assert verdict(base, fewer, pushes(0.3, 0.1), 99)[0] == "INVALID"
    assert verdict(base, good, pushes(0.3, 0.1, errors=2), 100)[0] == "INVALID"
