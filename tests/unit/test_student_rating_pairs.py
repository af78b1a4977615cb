"""Students' thumbs up or down in the reward model's pairs (training/reward_model/pairs.py):
used beside teachers' ratings, never over them, and never rewarding a turn that gave the
answer away."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.reward_model.pairs import (
    STUDENT_PAIR_WEIGHT,
    Sample,
    StudentRatedTurn,
    dataset_student_rated_turns,
    rated_turns,
    student_rated_turns,
    student_ratings_pairs,
)

pytestmark = pytest.mark.unit

PROBLEM = "Solve for x: 3x + 7 = 25."


def thumbs(*helpful: bool) -> list[dict]:
    return [{"student": f"s_{i}", "helpful": h, "reason": ""} for i, h in enumerate(helpful)]


def message(role: str, text: str, students=(), teachers=(), leaked=None) -> dict:
    return {
        "role": role,
        "text": text,
        "ratings": list(teachers),
        "student_ratings": list(students),
        "leaked_answer": leaked,
    }


def session(messages: list[dict], problem: str = PROBLEM, answer: str = "6") -> dict:
    return {"problem": {"text": problem, "final_answer": answer}, "messages": messages}


def test_helpful_turns_are_preferred_over_unhelpful_ones_with_half_weight():
    sessions = [
        session(
            [
                message("student", "help"),
                message("tutor", "What could you do to both sides first?", thumbs(True)),
                message("student", "subtract 7?"),
                message("tutor", "Equations are fun.", thumbs(False)),
            ]
        ),
        session([message("tutor", "What is 25 - 7?", thumbs(True, True, False))]),
    ]
    turns = student_rated_turns(sessions)
    assert {t.sample.turn: t.helpful for t in turns} == pytest.approx(
        {
            "What could you do to both sides first?": 1.0,
            "Equations are fun.": 0.0,
            "What is 25 - 7?": 2 / 3,
        }
    )
    assert turns[1].sample.history == (
        ("student", "help"),
        ("teacher", "What could you do to both sides first?"),
        ("student", "subtract 7?"),
    )
    pairs = student_ratings_pairs(turns)
    assert {(p.chosen.turn, p.rejected.turn) for p in pairs} == {
        ("What could you do to both sides first?", "Equations are fun."),
        ("What is 25 - 7?", "Equations are fun."),
    }
    assert all(p.kind == "student_ratings" and p.weight == STUDENT_PAIR_WEIGHT for p in pairs)
    assert STUDENT_PAIR_WEIGHT < 1.0, "a click weighs less than a teacher's rubric"


def test_a_turn_that_gave_the_answer_away_is_never_preferred():
    sessions = [
        session(
            [
                message("tutor", "The answer is x = 6.", thumbs(True)),  # found by the check
                message("tutor", "Nice try, it's six.", thumbs(True), leaked=True),  # flagged
                message("tutor", "Hmm.", thumbs(False)),
            ]
        )
    ]
    turns = student_rated_turns(sessions)
    assert all(t.leaked for t in turns if t.helpful > 0.5)
    assert student_ratings_pairs(turns) == []


def test_turns_a_teacher_rated_are_left_to_the_teacher():
    teacher = {"rater": "r_1", "helpful": 2, "gave_away_answer": False}
    sessions = [
        session(
            [
                message("tutor", "Subtract 7 from both sides.", thumbs(True), [teacher]),
                message("tutor", "Think.", thumbs(False)),
            ]
        )
    ]
    assert [t.sample.turn for t in student_rated_turns(sessions)] == ["Think."]
    assert student_ratings_pairs(student_rated_turns(sessions)) == []
    # ... and teachers' utilities do not move with students' thumbs.
    (rated,) = rated_turns(sessions)
    assert rated.utility == pytest.approx(2.0)


def test_malformed_student_ratings_are_skipped():
    sessions = [
        session(
            [
                message("tutor", "A", [{"helpful": "yes"}, {"helpful": 1}, "x", None]),
                {"role": "tutor", "text": "B", "student_ratings": "nope"},
                message("tutor", "", thumbs(True)),
            ]
        ),
        {"problem": {}, "messages": [message("tutor", "C", thumbs(True))]},
    ]
    assert student_rated_turns(sessions) == []


def test_pairs_never_cross_problems():
    sessions = [
        session([message("tutor", "Ask: what undoes + 7?", thumbs(True))]),
        session([message("tutor", "Meh.", thumbs(False))], problem="Another problem."),
    ]
    assert student_ratings_pairs(student_rated_turns(sessions)) == []


def record(kind: str, dialogue: str, turn: int, **fields) -> dict:
    return {
        "kind": kind,
        "dialogue": dialogue,
        "turn": turn,
        "problem_text": PROBLEM,
        "history": [{"role": "student", "text": "help"}],
        **fields,
    }


def test_retraining_dataset_records_give_the_same_pairs():
    records = [
        {"kind": "problem", "problem_id": "problem-1"},
        record("student_rating", "d_1", 1, tutor_text="What undoes + 7?", helpful=True),
        record("student_rating", "d_2", 1, tutor_text="Whatever.", helpful=False),
        record("student_rating", "d_3", 1, tutor_text="x = 6", helpful=True, leaked_answer=True),
        # teacher-rated: left to the teacher
        record("student_rating", "d_4", 2, tutor_text="Subtract.", helpful=False),
        record("rating", "d_4", 2, tutor_text="Subtract.", helpful=5),
        {"kind": "outcome", "dialogue": "d_1"},
    ]
    turns = dataset_student_rated_turns(records)
    assert sorted(t.sample.turn for t in turns) == ["What undoes + 7?", "Whatever.", "x = 6"]
    assert turns[0].sample.history == (("student", "help"),)
    pairs = student_ratings_pairs(turns)
    assert [(p.chosen.turn, p.rejected.turn) for p in pairs] == [("What undoes + 7?", "Whatever.")]


def test_pairs_per_problem_are_capped():
    turns = [
        StudentRatedTurn(Sample(PROBLEM, (), f"turn {i}"), "k", float(i % 2), 1, False)
        for i in range(20)
    ]
    assert len(student_ratings_pairs(turns, max_pairs_per_problem=1000)) == 100
    capped = student_ratings_pairs(turns, max_pairs_per_problem=7, seed=3)
    assert len(capped) == 7 and capped == student_ratings_pairs(
        turns, max_pairs_per_problem=7, seed=3
    )


_turns = st.lists(
    st.builds(
        StudentRatedTurn,
        sample=st.builds(Sample, st.just(PROBLEM), st.just(()), st.text(max_size=5)),
        problem_key=st.sampled_from(["a", "b", "c"]),
        helpful=st.sampled_from([0.0, 1 / 3, 0.5, 2 / 3, 1.0]),
        votes=st.integers(1, 3),
        leaked=st.booleans(),
    ),
    max_size=12,
)


@given(_turns, st.integers(1, 20))
def test_pair_rule_holds_for_any_turns(turns, cap):
    pairs = student_ratings_pairs(turns, max_pairs_per_problem=cap)
    by_sample = {}
    for turn in turns:
        by_sample.setdefault((turn.problem_key, turn.sample), []).append(turn)
    counts: dict[str, int] = {}
    for pair in pairs:
        chosen = by_sample[(pair.problem_key, pair.chosen)]
        rejected = by_sample[(pair.problem_key, pair.rejected)]
        assert any(t.helpful > 0.5 and not t.leaked for t in chosen)
        assert any(t.helpful < 0.5 for t in rejected)
        assert pair.chosen != pair.rejected and pair.weight == STUDENT_PAIR_WEIGHT
        counts[pair.problem_key] = counts.get(pair.problem_key, 0) + 1
    assert all(n <= cap for n in counts.values())
