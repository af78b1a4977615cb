"""The training dataset file a job reads: one JSON object per line.

Lines with ``"kind": "problem"`` are problems to roll out (a :class:`RolloutProblem`, with an
optional real student persona); lines of other kinds (``"rating"``, ``"outcome"``,
``"blocked"``) carry the logged teacher ratings, session outcomes and the reply attempts the
answer guard stopped (negative examples), which the job may use (the reward model, reports) and are
kept as plain dicts. The Django side writes the file (``tutor/retraining/export.py``); this
module reads and writes it without Django, so a GPU box can train from a copied file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.data.mathdial import MathDialRecord, read_mathdial
from training.rollout import RolloutProblem
from training.simulated_student import StudentProfile


class DatasetError(ValueError):
    """The dataset file is malformed or holds no problem."""


def problem_to_dict(problem: RolloutProblem, solve_rate: float | None = None) -> dict[str, Any]:
    """A problem line; ``solve_rate`` (the student's calibrated rate alone, see
    :mod:`training.calibration`) is written only when known, so files stay as they were."""
    data: dict[str, Any] = {
        "kind": "problem",
        "problem_id": problem.problem_id,
        "text": problem.text,
        "final_answer": problem.final_answer,
        "solution": problem.solution,
        "category": problem.category,
        "instructions": list(problem.instructions),
        "student": problem.student.to_dict() if problem.student else None,
    }
    if solve_rate is not None:
        data["solve_rate"] = float(solve_rate)
    return data


def solve_rate_of(data: dict[str, Any]) -> float | None:
    """A problem line's calibrated solve rate: None when absent (older files) or not a rate
    in [0, 1]."""
    rate = data.get("solve_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        return None
    rate = float(rate)
    return rate if 0.0 <= rate <= 1.0 else None


def problem_from_dict(data: dict[str, Any]) -> RolloutProblem:
    try:
        student = data.get("student")
        return RolloutProblem(
            problem_id=str(data["problem_id"]),
            text=str(data["text"]),
            final_answer=str(data["final_answer"]),
            solution=str(data.get("solution") or ""),
            category=str(data.get("category") or ""),
            instructions=tuple(data.get("instructions") or ()),
            student=StudentProfile.from_dict(student) if student else None,
        )
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"a problem line lacks a field: {exc}") from exc


DEFAULT_CATEGORY = "general"


def category_of(problem: RolloutProblem) -> str:
    """The curriculum arm of a problem (its category, or one shared arm for the rest)."""
    return problem.category or DEFAULT_CATEGORY


@dataclass
class Dataset:
    problems: list[RolloutProblem]
    records: list[dict[str, Any]] = field(default_factory=list)  # ratings, outcomes, ...
    # Calibrated solve rates by problem id, for the problems that have one.
    solve_rates: dict[str, float] = field(default_factory=dict)

    def by_category(self) -> dict[str, list[RolloutProblem]]:
        grouped: dict[str, list[RolloutProblem]] = {}
        for problem in self.problems:
            grouped.setdefault(category_of(problem), []).append(problem)
        return grouped


def write_dataset(
    path: str | Path,
    problems: Iterable[RolloutProblem],
    records: Iterable[dict[str, Any]] = (),
    solve_rates: Mapping[str, float | None] | None = None,
) -> int:
    """Write problems then other records; returns the number of problem lines.
    ``solve_rates`` (by problem id) adds each known rate to its problem's line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for problem in problems:
            rate = (solve_rates or {}).get(problem.problem_id)
            line = problem_to_dict(problem, rate)
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return count


def read_dataset(path: str | Path) -> Dataset:
    problems: list[RolloutProblem] = []
    records: list[dict[str, Any]] = []
    rates: dict[str, float] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(data, dict):
                raise DatasetError(f"{path}:{number}: expected an object")
            if data.get("kind") == "problem":
                problem = problem_from_dict(data)
                problems.append(problem)
                rate = solve_rate_of(data)
                if rate is not None:
                    rates[problem.problem_id] = rate
            else:
                records.append(data)
    if not problems:
        raise DatasetError(f"{path} holds no problem to train on")
    return Dataset(problems=problems, records=records, solve_rates=rates)


#: Share of MathDial problems kept out of training, for evaluation (a fixed hash split).
HELDOUT_FRACTION = 0.3


def is_heldout(problem_id: str) -> bool:
    """Whether a problem belongs to the fixed held-out split: a hash of its id, so the split
    is the same on every machine and does not depend on the file's order."""
    digest = hashlib.sha256(f"heldout:{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < HELDOUT_FRACTION


def mathdial_problem(record: MathDialRecord) -> RolloutProblem:
    """A MathDial row as a rollout problem with its real student."""
    return RolloutProblem(
        problem_id=f"mathdial:{record.qid}",
        text=record.question,
        final_answer=record.final_answer,
        solution=record.solution,
        category="mathdial",
        student=StudentProfile.from_mathdial(record),
    )


def mathdial_problems(
    path: str | Path, split: str = "all", limit: int | None = None
) -> list[RolloutProblem]:
    """MathDial records as rollout problems, of one split: ``"train"`` (for jobs run from the
    command line, and to top up a small log), ``"heldout"`` (for evaluation) or ``"all"``."""
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be train, heldout or all, not {split!r}")
    out: list[RolloutProblem] = []
    for record in read_mathdial(path):
        problem = mathdial_problem(record)
        if split != "all" and is_heldout(problem.problem_id) != (split == "heldout"):
            continue
        out.append(problem)
        if limit is not None and len(out) >= limit:
            break
    return out
