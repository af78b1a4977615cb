"""A job's data window exported to the training dataset file: what is in it, what is not."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from training.dataset import read_dataset
from tutor.classes.models import Assignment, Classroom
from tutor.dialogues.models import AnswerAttempt, BlockedReply, Message, TutoringSession
from tutor.problems.models import Problem
from tutor.retraining.export import build_dataset, count_window_problems, export_job_dataset
from tutor.retraining.models import TrainingJob
from tutor.retraining.services import base_version
from tutor.reviews.models import TurnRating

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def world(make_user, teacher, problem):
    """Two classes and free practice, with sessions, messages, ratings and attempts."""
    alice = make_user("alice.smith")
    bob = make_user("bob.jones")
    algebra = Classroom.objects.create(
        name="Algebra",
        teacher=teacher,
        pedagogy_instructions="Never give the final answer.\nAsk one question at a time.",
    )
    other = Classroom.objects.create(name="Geometry", teacher=teacher)
    homework = Assignment.objects.create(
        classroom=algebra, title="HW", pedagogy_instructions="Use the word 'balance'."
    )
    mathdial = Problem.objects.create(
        title="Apples",
        text="Tom has 3 apples and buys 4 more. How many?",
        final_answer="7",
        solution="3 + 4 = 7",
        skills=[],
        source=Problem.Source.MATHDIAL,
        source_id="md-1",  # not in the held-out split
        metadata={
            "student_profile": "Kayla is a 7th grade student who rushes.",
            "student_incorrect_solution": "3 * 4 = 12",
            "teacher_described_confusion": "multiplied instead of adding",
        },
    )
    triangle = Problem.objects.create(
        title="Triangle", text="Angles 50 and 60; the third?", final_answer="70", solution="."
    )
    s1 = TutoringSession.objects.create(
        student=alice,
        problem=problem,
        classroom=algebra,
        assignment=homework,
        model_name="tutor-v1",
        outcome="solved",
        status="closed",
    )
    Message.objects.create(session=s1, role="student", text="I am Alice Smith, help")
    tutor_turn = Message.objects.create(
        session=s1, role="tutor", text="What do you get if you subtract 7?", leaked_answer=False
    )
    Message.objects.create(session=s1, role="student", text="3x = 18")
    TurnRating.objects.create(
        message=tutor_turn,
        rater=teacher,
        helpful=5,
        no_answer_reveal=4,
        correct=5,
        encourages_thinking=4,
        teacher_move="probing",
        comment="Ms Rivera thinks this is great",
    )
    AnswerAttempt.objects.create(session=s1, answer="5", correct=False)
    AnswerAttempt.objects.create(session=s1, answer="6", correct=True)
    s2 = TutoringSession.objects.create(student=bob, problem=mathdial, classroom=algebra)
    shown = Message.objects.create(
        session=s2, role="tutor", text="The answer is 7.", leaked_answer=True, guard="retried"
    )
    # What the answer guard stopped before the student saw it: a negative example.
    BlockedReply.objects.create(
        message=shown, attempt=1, text="So it is 7 then.", reason="answer_leak", detail="7"
    )
    s3 = TutoringSession.objects.create(student=bob, problem=triangle, classroom=other)
    s4 = TutoringSession.objects.create(student=alice, problem=triangle)  # free practice
    old = timezone.now() - dt.timedelta(days=30)
    TutoringSession.objects.filter(pk=s3.pk).update(created_at=old)
    return {
        "algebra": algebra,
        "other": other,
        "sessions": (s1, s2, s3, s4),
        "problems": (problem, mathdial, triangle),
        "people": (alice, bob, teacher),
    }


def test_window_by_class_has_problems_ratings_and_outcomes(world, tmp_path):
    problem, mathdial, _ = world["problems"]
    result = build_dataset(scope="job-1", classroom_ids=[world["algebra"].pk])
    assert result.stats == {
        "sessions": 2,
        "problems": 2,
        "problems_from_logs": 2,
        "problems_from_bank": 0,
        "problems_held_out": 0,
        "ratings": 1,
        "outcomes": 2,
        "blocked": 1,
    }
    (blocked,) = [r for r in result.records if r["kind"] == "blocked"]
    assert blocked["reason"] == "answer_leak" and blocked["tutor_text"] == "So it is 7 then."
    assert blocked["attempt"] == 1 and blocked["turn"] == 1 and blocked["detail"] == "7"
    by_id = {p.problem_id: p for p in result.problems}
    first = by_id[f"problem-{problem.pk}"]
    assert first.category == "linear equations"
    assert first.final_answer == "6" and "3x + 7 = 25" in first.text
    assert first.instructions == (
        "Never give the final answer.",
        "Ask one question at a time.",
        "Use the word 'balance'.",
    )
    assert first.student is None
    apples = by_id[f"problem-{mathdial.pk}"]
    assert apples.category == "general"
    assert apples.student.name == "Kayla"
    assert apples.student.incorrect_solution == "3 * 4 = 12"

    rating = next(r for r in result.records if r["kind"] == "rating")
    assert rating["problem_id"] == f"problem-{problem.pk}"
    assert (rating["helpful"], rating["no_answer_reveal"], rating["teacher_move"]) == (
        5,
        4,
        "probing",
    )
    assert rating["tutor_text"] == "What do you get if you subtract 7?"
    assert rating["history"] == [{"role": "student", "text": "I am Alice Smith, help"}]
    assert rating["rater"].startswith("r_")

    outcomes = {r["problem_id"]: r for r in result.records if r["kind"] == "outcome"}
    solved = outcomes[f"problem-{problem.pk}"]
    assert solved["outcome"] == "solved" and solved["solved"] is True
    assert (solved["attempts"], solved["correct_attempts"], solved["tutor_turns"]) == (2, 1, 1)
    assert solved["student"].startswith("s_")
    assert outcomes[f"problem-{mathdial.pk}"]["leaked_turns"] == 1

    # The file round-trips through the trainer's reader.
    path = tmp_path / "dataset.jsonl"
    from training.dataset import write_dataset

    write_dataset(path, result.problems, result.records)
    dataset = read_dataset(path)
    assert (
        len(dataset.problems) == 2 and len(dataset.records) == 4
    )  # a rating, two outcomes, a blocked attempt


def test_export_is_anonymised(world, tmp_path):
    job = TrainingJob.objects.create(base_version=base_version(), config={"problems_per_step": 1})
    path = tmp_path / "d.jsonl"
    export_job_dataset(job, path)
    text = path.read_text()
    for person in world["people"]:
        assert person.username not in text
        assert person.first_name not in text
    assert "Ms Rivera" not in text  # teachers' comments are not exported
    assert "Alice Smith" in text  # what a student typed is kept as typed (documented)
    lines = [json.loads(line) for line in text.splitlines()]
    students = {line["student"] for line in lines if line["kind"] == "outcome"}
    assert len(students) == 2  # alice and bob, as two stable opaque ids
    # Ids differ from one job to another.
    other_job = TrainingJob.objects.create(base_version=base_version(), config={})
    export_job_dataset(other_job, tmp_path / "e.jsonl")
    other_lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert not students & {line["student"] for line in other_lines if line["kind"] == "outcome"}


def test_dates_and_free_practice(world):
    everything = build_dataset(scope="x")
    assert everything.stats["sessions"] == 4 and everything.stats["problems"] == 3
    recent = build_dataset(scope="x", date_from=timezone.localdate() - dt.timedelta(days=7))
    assert recent.stats["sessions"] == 3
    old = build_dataset(scope="x", date_to=timezone.localdate() - dt.timedelta(days=7))
    assert old.stats["sessions"] == 1
    assert count_window_problems([world["other"].pk]) == 1
    assert count_window_problems([world["other"].pk], timezone.localdate()) == 0


def test_problem_bank_tops_up_a_small_window(world):
    bank = [
        Problem.objects.create(
            title=f"B{i}", text=f"{i} + 1?", final_answer=str(i + 1), solution=""
        )
        for i in range(5)
    ]
    Problem.objects.filter(pk=bank[0].pk).update(is_active=False)
    without = build_dataset(scope="x", classroom_ids=[world["other"].pk], min_problems=4)
    assert without.stats["problems"] == 1
    topped = build_dataset(
        scope="x", classroom_ids=[world["other"].pk], include_problem_bank=True, min_problems=4
    )
    assert topped.stats["problems"] == 4
    assert topped.stats["problems_from_bank"] == 3
    ids = [p.problem_id for p in topped.problems]
    assert len(set(ids)) == 4
    assert f"problem-{bank[0].pk}" not in ids  # inactive problems are not used


def test_an_empty_window_is_an_error(world, tmp_path):
    job = TrainingJob.objects.create(base_version=base_version(), config={})
    job.date_from = timezone.localdate() + dt.timedelta(days=1)
    with pytest.raises(ValueError, match="holds no problem"):
        export_job_dataset(job, tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


def test_held_out_mathdial_problems_are_never_trained_on(world, make_user):
    from training.dataset import is_heldout

    assert is_heldout("mathdial:md-2") and not is_heldout("mathdial:md-3")
    held, kept = (
        Problem.objects.create(
            title=qid,
            text=f"{qid}?",
            final_answer="1",
            solution="",
            source=Problem.Source.MATHDIAL,
            source_id=qid,
        )
        for qid in ("md-2", "md-3")
    )
    TutoringSession.objects.create(
        student=make_user("carl"), problem=held, classroom=world["other"]
    )
    result = build_dataset(scope="x", classroom_ids=[world["other"].pk])
    ids = {p.problem_id for p in result.problems}
    assert f"problem-{held.pk}" not in ids
    assert result.stats["problems_held_out"] == 1
    topped = build_dataset(
        scope="x", classroom_ids=[world["other"].pk], include_problem_bank=True, min_problems=50
    )
    ids = {p.problem_id for p in topped.problems}
    assert f"problem-{kept.pk}" in ids and f"problem-{held.pk}" not in ids
