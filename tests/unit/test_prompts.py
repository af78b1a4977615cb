import pytest

from inference.prompts import ProblemContext, Turn, build_tutor_messages, trim_history

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
