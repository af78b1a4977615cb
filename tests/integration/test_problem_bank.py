import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tutor.problems.models import Problem

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mathdial_test.jsonl"


def test_seed_demo_creates_accounts_and_the_starter_bank():
    call_command("seed_demo", "--no-classroom", stdout=StringIO())
    call_command("seed_demo", "--no-classroom", stdout=StringIO())  # idempotent
    from tutor.accounts.models import User

    assert dict(User.objects.values_list("username", "role")) == {
        "student": "student",
        "student2": "student",
        "teacher": "teacher",
        "admin": "admin",
    }
    starter = Problem.objects.filter(source="starter")
    assert starter.count() >= 15
    assert all(p.final_answer and p.solution and p.skills for p in starter)


@pytest.mark.skipif(not SHARED.exists(), reason="shared MathDial data not beside the checkout")
def test_import_mathdial_is_idempotent_and_keeps_student_profiles():
    out = StringIO()
    call_command("import_mathdial", str(SHARED), "--limit", "20", stdout=out)
    assert "20 created" in out.getvalue()
    call_command("import_mathdial", str(SHARED), "--limit", "20", stdout=out)
    assert Problem.objects.filter(source="mathdial").count() == 20
    julia = Problem.objects.get(source="mathdial", source_id="6000025")
    assert julia.final_answer == "10"
    assert "15-5=10" in julia.solution and not julia.solution.rstrip().endswith("\n 10")
    assert julia.metadata["student_profile"].startswith("Mariana")
    assert julia.metadata["student_incorrect_solution"]


def test_import_mathdial_reports_bad_files(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_mathdial", str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"qid": 1, "question": "q"}) + "\n")
    with pytest.raises(CommandError, match="ground_truth"):
        call_command("import_mathdial", str(bad))
    assert not Problem.objects.exists()
