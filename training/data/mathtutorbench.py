"""Reading MathTutorBench scaffolding sets (Macina et al., 2025).

The files (``mathtutorbench_mathdial_bridge.json`` and its ``_hard`` subset) are JSON lists of
``{problem, topic, reference_solution, dialog_history}``; ``dialog_history`` is a list of
``{user: "Teacher" | "Student", text}`` that ends where a human teacher's next turn is expected.
The reference solution puts the final answer alone on its last line, as in MathDial. Items
from the Bridge data set (the tail of each file) have no problem text and ``"N/A"`` as their
solution: they are read with an empty ``problem`` and ``final_answer``.

The data sets live in ``../shared/data`` beside the checkout and are read from there at run
time; they are never copied into the repository.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .mathdial import DialogueTurn, MathDialFormatError, final_answer_of

#: ``../shared/data`` beside the checkout; ``TUTOR_SHARED_DATA`` overrides it.
DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
BRIDGE_GLOB = "mathtutorbench_mathdial_bridge*.json"
_NO_SOLUTION = {"N/A", "NA", "NONE"}
_SPEAKERS = {"teacher": "teacher", "tutor": "teacher", "student": "student"}


class MathTutorBenchFormatError(ValueError):
    """A file or item does not look like a MathTutorBench scaffolding set."""


@dataclass(frozen=True)
class MathTutorBenchItem:
    problem: str
    topic: str
    reference_solution: str
    final_answer: str
    history: list[DialogueTurn] = field(default_factory=list)

    @property
    def has_problem(self) -> bool:
        """A math word problem with a known final answer (not a Bridge item)."""
        return bool(self.problem and self.final_answer)

    @property
    def last_student_text(self) -> str:
        for turn in reversed(self.history):
            if turn.speaker == "student":
                return turn.text
        return ""


def shared_data_dir() -> Path:
    return Path(os.environ.get("TUTOR_SHARED_DATA") or DEFAULT_SHARED_DATA)


def bridge_files(directory: str | Path | None = None) -> list[Path]:
    """The MathTutorBench bridge files present in the shared data folder, sorted by name."""
    return sorted(Path(directory or shared_data_dir()).glob(BRIDGE_GLOB))


def parse_item(item: dict) -> MathTutorBenchItem:
    if not isinstance(item, dict):
        raise MathTutorBenchFormatError(f"expected an object, got {type(item).__name__}")
    try:
        problem = str(item["problem"]).strip()
        solution = str(item["reference_solution"]).strip()
        raw_history = item["dialog_history"]
    except KeyError as exc:
        raise MathTutorBenchFormatError(f"missing field {exc.args[0]!r}") from exc
    if not isinstance(raw_history, list):
        raise MathTutorBenchFormatError("dialog_history is not a list")
    final_answer = ""
    if solution and solution.upper() not in _NO_SOLUTION:
        try:
            final_answer = final_answer_of(solution)
        except MathDialFormatError as exc:
            raise MathTutorBenchFormatError(str(exc)) from exc
    history = []
    for number, turn in enumerate(raw_history):
        if not isinstance(turn, dict) or "text" not in turn or "user" not in turn:
            raise MathTutorBenchFormatError(f"dialog_history[{number}] needs user and text")
        speaker = _SPEAKERS.get(str(turn["user"]).strip().lower())
        if speaker is None:
            raise MathTutorBenchFormatError(
                f"dialog_history[{number}]: unknown user {turn['user']!r}"
            )
        history.append(DialogueTurn(speaker=speaker, text=str(turn["text"]).strip()))
    return MathTutorBenchItem(
        problem=problem,
        topic=str(item.get("topic") or "").strip(),
        reference_solution=solution,
        final_answer=final_answer,
        history=history,
    )


def read_mathtutorbench(path: str | Path) -> Iterator[MathTutorBenchItem]:
    """Yield the items of one file; a bad item raises with the file and its index."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise MathTutorBenchFormatError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise MathTutorBenchFormatError(f"{path}: expected a JSON list of items")
    for index, item in enumerate(data):
        try:
            yield parse_item(item)
        except MathTutorBenchFormatError as exc:
            raise MathTutorBenchFormatError(f"{path}[{index}]: {exc}") from exc
