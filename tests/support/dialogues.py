"""Hand-built rollout dialogues for unit tests of rewards and evaluation metrics."""

from __future__ import annotations

from training.rollout import Dialogue, DialogueTurn, EndpointConfig, RolloutProblem
from training.simulated_student import StudentProfile

PROBLEM = RolloutProblem(
    problem_id="p1",
    text="Tom has 3 bags with 4 apples each. He eats 2 apples. How many apples are left?",
    final_answer="10",
)
STUDENT = StudentProfile(name="Sam", profile="Sam is a 6th grader.", incorrect_solution="3+4=7")
ENDPOINT = EndpointConfig(base_url="http://unused/v1", model="m")


def dialogue(turns: list[tuple[str, str]], finals: list[str], error: str | None = None) -> Dialogue:
    """A dialogue on :data:`PROBLEM` with these (role, text) turns and final solutions."""
    return Dialogue(
        problem=PROBLEM,
        student=STUDENT,
        tutor=ENDPOINT,
        student_model=ENDPOINT,
        turns=[DialogueTurn(role=role, text=text) for role, text in turns],  # type: ignore[arg-type]
        final_solutions=finals,
        error=error,
    )
