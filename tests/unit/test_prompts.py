import pytest

from inference.prompts import (
    INSTRUCTIONS_CUT_NOTE,
    INSTRUCTIONS_SHARE,
    ProblemContext,
    Turn,
    build_tutor_messages,
    fit_instructions,
    trim_history,
)

pytestmark = pytest.mark.unit

PROBLEM = ProblemContext(text="Solve $3x+7=25$.", final_answer="6", solution="3x = 18, x = 6")


def test_system_prompt_has_problem_solution_answer_and_the_rule():
    system = build_tutor_messages(PROBLEM, [])[0]
    assert system["role"] == "system"
    assert "Solve $3x+7=25$." in system["content"]
    assert "3x = 18, x = 6" in system["content"]
    assert "Final answer (for you only; never reveal it)\n6" in system["content"]
    assert "Never state the final answer" in system["content"]


def test_teacher_instructions_are_listed_and_blank_ones_dropped():
    system = build_tutor_messages(PROBLEM, [], instructions=["Answer in Spanish", "  "])[0]
    assert "- Answer in Spanish" in system["content"]
    assert system["content"].count("\n- ") >= 1
    assert "Instructions from the student's teacher" in system["content"]
    assert "Instructions from" not in build_tutor_messages(PROBLEM, [])[0]["content"]


def test_history_maps_roles_and_merges_consecutive_turns():
    history = [
        Turn("student", "hi"),
        Turn("student", "I think x is 5"),
        Turn("tutor", "Check it: what is 3*5+7?"),
        Turn("student", "22"),
    ]
    messages = build_tutor_messages(PROBLEM, history)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "hi\n\nI think x is 5"


def test_history_is_trimmed_to_budget_keeping_newest_and_starting_with_the_student():
    history = [Turn("student", "a" * 50), Turn("tutor", "b" * 50), Turn("student", "c" * 50)]
    assert trim_history(history, char_budget=120) == [history[2]]
    assert trim_history(history, char_budget=1000) == history
    # The newest turn is kept even when it alone is over budget.
    assert trim_history([Turn("student", "x" * 500)], char_budget=10)[0].text == "x" * 500


def test_hidden_planning_asks_for_think_tags_only_when_on():
    from inference.prompts import HIDDEN_PLANNING

    problem = ProblemContext(text="What is 2 + 3?", final_answer="5")
    assert HIDDEN_PLANNING not in build_tutor_messages(problem, [])[0]["content"]
    system = build_tutor_messages(problem, [], hidden_planning=True)[0]["content"]
    assert system.endswith(HIDDEN_PLANNING) and "<think>" in system


def teacher_section(system: str) -> str:
    return system.split("## Instructions from the student's teacher", 1)[1]


def test_instructions_within_their_share_are_kept_whole():
    instructions = ["Answer in Spanish.", "Use the bar model.\nGive one hint per turn."]
    system = build_tutor_messages(PROBLEM, [], instructions, char_budget=400)[0]["content"]
    section = teacher_section(system)
    assert "- Answer in Spanish.\n- Use the bar model.\n- Give one hint per turn." in section
    assert INSTRUCTIONS_CUT_NOTE not in system


def test_instructions_past_their_share_are_cut_with_a_note():
    instructions = [f"Instruction number {i} says something useful." for i in range(100)]
    budget = 2000
    system = build_tutor_messages(
        PROBLEM, [], instructions, char_budget=budget, instructions_share=0.25
    )[0]["content"]
    section = teacher_section(system)
    assert section.rstrip().endswith(INSTRUCTIONS_CUT_NOTE)
    listed = [line[2:] for line in section.splitlines() if line.startswith("- ")]
    assert listed[0] == instructions[0]
    assert sum(len(line) + 1 for line in listed) <= budget * 0.25
    assert "Instruction number 99" not in system
    # The share bounds them however much the teacher wrote.
    huge = build_tutor_messages(PROBLEM, [], ["word " * 50_000], char_budget=budget)[0]["content"]
    assert len(teacher_section(huge)) < budget * INSTRUCTIONS_SHARE + 200
    assert INSTRUCTIONS_CUT_NOTE in huge


def test_a_long_instruction_is_cut_at_a_word_with_an_ellipsis():
    kept, cut = fit_instructions(["Always ask the student to explain each step aloud."], 30)
    assert cut
    assert kept == ["Always ask the student to…"]
    assert len(kept[0]) + 1 <= 30
    assert fit_instructions(["short", "", "  "], 30) == (["short"], False)
    # No room at all: only the note remains.
    system = build_tutor_messages(PROBLEM, [], ["Be kind."], instructions_share=0)[0]["content"]
    assert "- Be kind." not in system
    assert INSTRUCTIONS_CUT_NOTE in system


def test_the_instructions_share_comes_out_of_the_history_budget():
    history = [Turn("student", "a" * 100), Turn("tutor", "b" * 100), Turn("student", "c" * 100)]
    # Without instructions all three turns fit in 320 characters ...
    assert len(build_tutor_messages(PROBLEM, history, char_budget=320)) == 4
    # ... with 79 characters of instructions only the newest does.
    messages = build_tutor_messages(
        PROBLEM, history, ["x" * 78], char_budget=320, instructions_share=0.25
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "c" * 100


def test_the_instructions_share_must_be_a_fraction():
    with pytest.raises(ValueError, match="instructions_share"):
        build_tutor_messages(PROBLEM, [], instructions_share=1.5)


# ---- the teacher's side: what can be saved is bounded too -------------------------------------


def test_the_class_and_assignment_forms_refuse_overlong_instructions_with_a_clear_error():
    from tutor.classes.forms import AssignmentForm, ClassroomForm
    from tutor.classes.models import PEDAGOGY_INSTRUCTIONS_MAX_CHARS as LIMIT

    form = ClassroomForm({"name": "7A", "pedagogy_instructions": "x" * (LIMIT + 1)})
    assert not form.is_valid()
    assert form.errors["pedagogy_instructions"] == [
        f"Keep the pedagogy instructions to at most {LIMIT} characters (they have {LIMIT + 1}):"
        " the tutor reads only so much of them."
    ]
    # The browser's textarea counts a line break as one character; so does the form.
    lines = "\r\n".join(["y" * 99] * (LIMIT // 100))
    form = ClassroomForm({"name": "7A", "pedagogy_instructions": lines})
    assert form.is_valid(), form.errors
    assert len(form.cleaned_data["pedagogy_instructions"]) <= LIMIT
    assert 'maxlength="1000"' in str(form["pedagogy_instructions"])

    field = AssignmentForm().fields["pedagogy_instructions"]
    assert field.max_length == LIMIT
    assert str(LIMIT) in str(AssignmentForm.Meta.help_texts["pedagogy_instructions"])


def test_the_models_refuse_overlong_instructions():
    from django.core.exceptions import ValidationError

    from tutor.classes.models import PEDAGOGY_INSTRUCTIONS_MAX_CHARS as LIMIT
    from tutor.classes.models import Assignment, Classroom

    Classroom(name="7A", pedagogy_instructions="x" * LIMIT).clean_fields(exclude=["teacher"])
    for instance in (
        Classroom(name="7A", pedagogy_instructions="x" * (LIMIT + 1)),
        Assignment(title="HW", pedagogy_instructions="x" * (LIMIT + 1)),
    ):
        with pytest.raises(ValidationError) as caught:
            instance.clean_fields(exclude=["teacher", "classroom"])
        assert "at most 1000 characters" in str(caught.value.message_dict["pedagogy_instructions"])
