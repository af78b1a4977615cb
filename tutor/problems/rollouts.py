"""Problems as training and evaluation see them: a bank problem as a
:class:`training.rollout.RolloutProblem` (with MathDial's real student persona), and the fixed
held-out split evaluation measures on. The export and calibration share these."""

from __future__ import annotations

from types import SimpleNamespace

from training.dataset import is_heldout
from training.rollout import RolloutProblem
from training.simulated_student import StudentProfile

from .models import Problem


def student_persona(problem: Problem) -> StudentProfile | None:
    meta = problem.metadata or {}
    if problem.source != Problem.Source.MATHDIAL or not meta.get("student_profile"):
        return None
    return StudentProfile.from_mathdial(
        SimpleNamespace(
            student_profile=str(meta.get("student_profile") or ""),
            student_incorrect_solution=str(meta.get("student_incorrect_solution") or ""),
            teacher_described_confusion=str(meta.get("teacher_described_confusion") or ""),
        )
    )


def heldout_key(problem: Problem) -> str:
    """The problem's key in the fixed evaluation split: MathDial's own id (the split the
    command-line tools use too), else the bank's source and id, or title: stable across
    installs, unlike primary keys."""
    if problem.source == Problem.Source.MATHDIAL and problem.source_id:
        return f"mathdial:{problem.source_id}"
    return f"bank:{problem.source}:{problem.source_id or problem.title}"


def held_out(problem: Problem) -> bool:
    """A problem of the evaluation's held-out split: never trained on."""
    return is_heldout(heldout_key(problem))


def rollout_problem(problem: Problem, instructions=()) -> RolloutProblem:
    skills = problem.skills if isinstance(problem.skills, list) else []
    return RolloutProblem(
        problem_id=f"problem-{problem.pk}",
        text=problem.text,
        final_answer=problem.final_answer,
        solution=problem.solution,
        category=str(skills[0]) if skills else "general",
        instructions=tuple(instructions),
        student=student_persona(problem),
    )
