"""The demo classroom's pure parts (tutor/demo: statements, people, source, plan): which turns give
the answer away, the wrong answers students type, names, and a plan that is the same for the
same seed and never lies in the future."""

from __future__ import annotations

import datetime as dt
import random
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pedagogy import numbers
from training.data.mathdial import DialogueTurn, MathDialRecord
from tutor.demo import people, plan, source, statements

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)


# ---- statements --------------------------------------------------------------------------------


def test_a_tutor_turn_that_states_the_answer_first_leaks():
    turns = [
        ("student", "I got 4 spoons."),
        ("tutor", "Not quite: 12 + 3 = 15, take away 5 and you get ten."),
        ("student", "So 10?"),
        ("tutor", "Yes, 10."),
    ]
    leaks = statements.leaked_turns(turns, "10", "She had 12 spoons and used 3; he gave her 5.")
    assert list(leaks) == [1]
    start, end = leaks[1]
    assert turns[1][1][start:end] == "ten"


def test_no_leak_once_the_student_said_it_or_when_the_problem_gives_it():
    turns = [("student", "Is it 10?"), ("tutor", "Yes, 10 is right.")]
    assert statements.leaked_turns(turns, "10", "How many?") == {}
    turns = [("tutor", "You have 10 apples.")]
    assert statements.leaked_turns(turns, "10", "Sam has 10 apples. How many?") == {}
    assert statements.leaked_turns(turns, "5 or 6", "") == {}


def test_texts_past_the_bound_are_not_read():
    long = "x " * numbers.MAX_TEXT_CHARS + "10"
    assert statements.stated_span(long, Fraction(10)) is None
    assert statements.problem_values(long) == frozenset()


@given(
    answer=st.integers(min_value=1, max_value=10_000),
    before=st.lists(st.sampled_from(["tutor", "student"]), max_size=6),
)
def test_leaks_are_tutor_turns_before_the_student_states_it(answer, before):
    """Whatever the order of speakers, every reported turn is a tutor turn that states the
    answer, and none comes after the first student turn that does."""
    turns = [(speaker, f"Is it {answer}?") for speaker in before] + [("tutor", "Think again.")]
    leaks = statements.leaked_turns(turns, str(answer), "Find the number.")
    first_student = next((i for i, s in enumerate(before) if s == "student"), len(before))
    assert set(leaks) == {i for i, s in enumerate(before[:first_student]) if s == "tutor"}
    for index, (start, end) in leaks.items():
        assert Fraction(answer) in numbers.answer_reading(turns[index][1][start:end]).values


# ---- wrong answers and names -------------------------------------------------------------------


@given(
    gold=st.integers(min_value=0, max_value=100_000),
    first=st.integers(min_value=0, max_value=100_000),
    count=st.integers(min_value=0, max_value=6),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_wrong_answers_are_distinct_and_wrong(gold, first, count, seed):
    answers = plan.wrong_answers(str(first), str(gold), count, random.Random(seed))
    values = [numbers.answer_value(a) for a in answers]
    assert len(answers) <= count and len(set(values)) == len(values)
    assert Fraction(gold) not in values and all(v is not None and v >= 0 for v in values)
    if count and first != gold:
        assert answers[0] == str(first)  # the real student's own answer comes first


def test_wrong_answers_need_a_number():
    with pytest.raises(ValueError, match="not one number"):
        plan.wrong_answers("3", "5 or 6", 2, random.Random(1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Hi Mariana, please talk me through your solution",
            "Hi, please talk me through your solution",
        ),
        ("Mariana, what is 3 + 4?", "What is 3 + 4?"),
        ("Well done Mariana!", "Well done!"),
        ("Let's check Mariana's working, Marianas", "Let's check your working, Marianas"),
    ],
)
def test_the_tutor_does_not_know_the_students_name(text, expected):
    assert plan._unnamed(text, "Mariana") == expected


def test_simulated_students():
    students = people.simulated_students(random.Random(1), 20)
    assert len({s.username for s in students}) == 20
    assert all(
        s.username.startswith(people.USERNAME_PREFIX) and s.username.isascii() for s in students
    )
    assert people.username_for("Diego", "Fernández") == "demo-diego-fernandez"
    assert len({s.ability for s in students}) > 10
    with pytest.raises(ValueError):
        people.simulated_students(random.Random(1), len(people.NAMES) + 1)


# ---- the plan ----------------------------------------------------------------------------------


def record(qid: int, leak: bool) -> MathDialRecord:
    answer = 100 + qid
    teacher = f"The answer is {answer}." if leak else "What do you do first?"
    turns = [
        DialogueTurn("teacher", "Hi Jo, talk me through it", "generic"),
        DialogueTurn("student", "I added them."),
        DialogueTurn("teacher", teacher, "telling" if leak else "probing"),
        DialogueTurn("student", f"So it is {answer}."),
        DialogueTurn("teacher", "Well done Jo.", "generic"),
    ]
    return MathDialRecord(
        qid=str(qid),
        question=f"Problem {qid}: a shop sells pens. How many?",
        solution="work",
        final_answer=str(answer),
        student_incorrect_solution="I think it is 3.\n 3",
        student_profile="Jo is a 7th grade student.",
        turns=turns,
    )


def problems(count: int = 12) -> list[source.DemoProblem]:
    groups = {
        str(q): [record(q, False), record(q, q % 3 == 0), record(q, False)] for q in range(count)
    }
    built = [source.demo_problem(rows) for rows in groups.values()]
    return [p for p in built if p is not None]


def make_plan(seed: int = 15) -> plan.Plan:
    rng = random.Random(seed)
    roster = [people.demo_account("student", "Sam", "Student", 0.7)]
    roster += people.simulated_students(rng, 20)
    return plan.plan_history(roster, problems(), NOW, rng)


def test_the_dialogue_is_mathdials_after_the_simulated_opening():
    dialogue = source.dialogue_of(record(3, True))
    assert (
        dialogue.turns[0].speaker == source.STUDENT and "I think it is 3" in dialogue.turns[0].text
    )
    assert [t.text for t in dialogue.turns[1:3]] == ["Hi Jo, talk me through it", "I added them."]
    assert dialogue.leak_at(3) == "103" and dialogue.first_answer == "3"


def test_same_seed_same_plan_and_nothing_in_the_future():
    first, second = make_plan(), make_plan()
    assert first == second
    assert make_plan(16) != first
    for session in first.sessions:
        times = [m.at for m in session.messages]
        assert times == sorted(times) and session.updated_at <= NOW
        assert all(a.at <= NOW for a in session.attempts)
        correct = [a for a in session.attempts if a.correct]
        assert len(correct) <= 1 and (not correct or session.attempts[-1].correct)
        assert all("Jo" not in m.text for m in session.messages if m.speaker == source.TUTOR)
        for flag in session.flags:
            assert flag.at <= NOW and (flag.resolved_at is None or flag.resolved_at <= NOW)


def test_the_plan_has_everything_a_demo_needs():
    history = make_plan()
    due = [a.due_at for a in history.assignments]
    assert len(due) == 4 and sum(d < NOW for d in due) == 3
    kinds = {f.kind for s in history.sessions for f in s.flags}
    assert {"answer_leak", "blocked_leak", "unsafe_content"} <= kinds
    outcomes = {s.outcome for s in history.sessions}
    assert outcomes == {"solved", "incorrect", "pending"}
    assert any(m.rating for s in history.sessions for m in s.messages)
    assert any(m.thumb for s in history.sessions for m in s.messages)
    upcoming = history.assignments[-1]
    tried = {s.qid for s in history.sessions if s.student == "student" and s.assignment == 3}
    assert upcoming.qids[-1] not in tried
