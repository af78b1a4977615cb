"""A learned pedagogy reward model: scores a tutor turn in its context (problem, recent
dialogue). Trained pairwise (Bradley-Terry) on MathDial/MathTutorBench teacher turns and on
teachers' turn ratings from the class export. Plain Python: no Django import."""

from .model import RewardModel, default_encoder_path, normalize_history
from .pairs import (
    PreferencePair,
    RatedTurn,
    Sample,
    StudentRatedTurn,
    dataset_student_rated_turns,
    mathdial_pairs,
    mathtutorbench_pairs,
    problem_key,
    rated_turns,
    ratings_pairs,
    split_by_problem,
    student_rated_turns,
    student_ratings_pairs,
    synthetic_telling,
)

__all__ = [
    "PreferencePair",
    "RatedTurn",
    "RewardModel",
    "Sample",
    "StudentRatedTurn",
    "dataset_student_rated_turns",
    "default_encoder_path",
    "mathdial_pairs",
    "mathtutorbench_pairs",
    "normalize_history",
    "problem_key",
    "rated_turns",
    "ratings_pairs",
    "split_by_problem",
    "student_rated_turns",
    "student_ratings_pairs",
    "synthetic_telling",
]
