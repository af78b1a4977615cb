"""Problem calibration stored per student model, carried by the export, shown on the job page."""

import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from training.rollout import Completion
from tutor.problems.calibrations import stored_rates
from tutor.problems.models import Problem, ProblemCalibration
from tutor.retraining.export import band_counts, build_dataset, export_job_dataset
from tutor.retraining.models import TrainingJob
from tutor.retraining.services import base_version

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

STUDENT = "smollm2-135m-instruct"


class FakeStudent:
    """Solves "Easy" problems every time, "Mid" ones one sample of four, others never; fails
    outright on "Down"."""

    async def __call__(self, endpoint, messages, *, seed, n=1, max_tokens=None, extra_body=None):
        text = " ".join(m["content"] for m in messages)
        if "Down" in text:
            raise ConnectionError("server down")
        if "Easy" in text:
            return [Completion(text="Final answer: 7") for _ in range(n)]
        if "Mid" in text:
            return [Completion(text="Final answer: 7")] + [
                Completion(text="Final answer: 8") for _ in range(n - 1)
            ]
        return [Completion(text="Final answer: 8") for _ in range(n)]


@pytest.fixture
def bank(teacher):
    """Titles chosen outside the held-out split (``held_out``), so the export keeps them."""
    make = Problem.objects.create
    return {
        "easy": make(title="e", text="Easy: 3 + 4?", final_answer="7", solution="."),
        "mid": make(title="Mid", text="Mid: 3 + 4?", final_answer="7", solution="."),
        "hard": make(title="h", text="Hard: 3 + 4?", final_answer="7", solution="."),
        "down": make(title="Down", text="Down: 3 + 4?", final_answer="7", solution="."),
        "archived": make(
            title="a", text="Easy too", final_answer="7", solution=".", is_active=False
        ),
        "teachers": make(
            title="t", text="Easy: mine", final_answer="7", solution=".", owner=teacher
        ),
    }


def test_the_command_measures_the_active_bank_and_stores_rows(bank, capsys):
    call_command("calibrate_problems", "--k", "4", "--model", STUDENT, chat=FakeStudent())
    rows = {r.problem_id: r for r in ProblemCalibration.objects.all()}
    assert set(rows) == {bank[n].pk for n in ("easy", "mid", "hard", "down")}
    assert rows[bank["easy"].pk].solve_rate == 1.0
    assert rows[bank["mid"].pk].solve_rate == 0.25
    assert rows[bank["hard"].pk].solve_rate == 0.0
    assert rows[bank["down"].pk].solve_rate is None and "server down" in rows[bank["down"].pk].error
    assert rows[bank["mid"].pk].answers == ["7", "8", "8", "8"]
    assert {(r.student_model, r.k, r.calculator) for r in rows.values()} == {(STUDENT, 4, False)}
    out = capsys.readouterr().out
    assert "[4/4]" in out and "1 in the band" in out and "1 failed" in out
    # Measuring again replaces the rows; the calculator setting is a row of its own.
    call_command("calibrate_problems", "--k", "4", "--model", STUDENT, chat=FakeStudent())
    call_command(
        "calibrate_problems", "--k", "4", "--calculator", "--limit", "1", chat=FakeStudent()
    )
    assert ProblemCalibration.objects.count() == 5
    assert ProblemCalibration.objects.filter(calculator=True).count() == 1


def test_stored_rates_skip_failures_and_other_students(bank):
    ProblemCalibration.objects.create(
        problem=bank["easy"], student_model=STUDENT, k=8, solve_rate=0.5
    )
    ProblemCalibration.objects.create(
        problem=bank["mid"], student_model="other", k=8, solve_rate=0.5
    )
    ProblemCalibration.objects.create(problem=bank["hard"], student_model=STUDENT, k=8)
    pks = [p.pk for p in bank.values()]
    assert stored_rates(pks, STUDENT) == {bank["easy"].pk: 0.5}
    assert stored_rates(pks, STUDENT, calculator=True) == {}


def test_band_counts():
    counts = band_counts([None, 0.0, 0.01, 0.25, 0.6, 0.61, 1.0])
    assert counts == {"in_band": 3, "below": 1, "above": 2, "uncalibrated": 1}


def test_the_export_carries_each_problems_rate_and_counts_the_band(bank, tmp_path):
    rates = {"easy": 1.0, "mid": 0.25, "hard": 0.0}
    for name, rate in rates.items():
        ProblemCalibration.objects.create(
            problem=bank[name], student_model=STUDENT, k=8, solve_rate=rate
        )
    result = build_dataset(
        scope="x", include_problem_bank=True, min_problems=10, student_model=STUDENT
    )
    assert result.stats["calibration_in_band"] == 1
    assert result.stats["calibration_below"] == 1 and result.stats["calibration_above"] == 1
    assert result.stats["calibration_uncalibrated"] == result.stats["problems"] - 3
    assert "calibration_in_band" not in build_dataset(scope="x", include_problem_bank=True).stats

    job = TrainingJob.objects.create(
        base_version=base_version(),
        include_problem_bank=True,
        config={"student_model": STUDENT, "problems_per_step": 10},
    )
    stats = export_job_dataset(job, tmp_path / "d.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    by_id = {line["problem_id"]: line for line in lines if line["kind"] == "problem"}
    assert by_id[f"problem-{bank['mid'].pk}"]["solve_rate"] == 0.25
    assert by_id[f"problem-{bank['hard'].pk}"]["solve_rate"] == 0.0
    assert "solve_rate" not in by_id[f"problem-{bank['down'].pk}"]
    assert stats["calibration_in_band"] == 1
    # Another student model's rates are not this job's.
    other = TrainingJob.objects.create(
        base_version=base_version(),
        include_problem_bank=True,
        config={"student_model": "another-student", "problems_per_step": 10},
    )
    stats = export_job_dataset(other, tmp_path / "e.jsonl")
    assert (
        stats["calibration_in_band"] == 0 and "solve_rate" not in (tmp_path / "e.jsonl").read_text()
    )


def test_the_job_page_shows_the_distribution(client, make_user):
    admin = make_user("root", role="admin")
    job = TrainingJob.objects.create(
        created_by=admin,
        base_version=base_version(),
        config={"steps": 3, "band_low": 0.01, "band_high": 0.6},
        total_steps=3,
        dataset_stats={
            "problems": 9,
            "ratings": 0,
            "outcomes": 0,
            "calibration_in_band": 4,
            "calibration_below": 3,
            "calibration_above": 1,
            "calibration_uncalibrated": 1,
        },
    )
    client.force_login(admin)
    page = client.get(reverse("retraining:job_detail", args=[job.pk])).text
    assert 'id="job-calibration"' in page
    assert '<meter min="0" max="9" value="4"></meter> in band (1–60%): <strong>4</strong>' in page
    assert "below (too hard alone): <strong>3</strong>" in page
    assert "above (too easy alone): <strong>1</strong>" in page
    assert "not calibrated: <strong>1</strong>" in page
    # A job exported before calibration existed shows no histogram.
    TrainingJob.objects.filter(pk=job.pk).update(dataset_stats={"problems": 9})
    page = client.get(reverse("retraining:job_detail", args=[job.pk])).text
    assert 'id="job-calibration"' not in page
