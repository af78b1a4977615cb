"""Reading MathDial JSONL files (Macina et al., 2023).

Each row holds a word problem, a worked solution whose last line is the final answer, a real
student's incorrect first solution and profile, and the teacher-student conversation with the
teacher's move (focus, probing, telling, generic) tagged on each teacher turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TURN_SEPARATOR = "|EOM|"
_MOVE = re.compile(r"^\((focus|probing|telling|generic)\)\s*", re.IGNORECASE)


class MathDialFormatError(ValueError):
    """A row does not look like MathDial."""


@dataclass(frozen=True)
class DialogueTurn:
    speaker: str  # "teacher" or "student"
    text: str
    move: str = ""  # teacher move, when tagged


@dataclass(frozen=True)
class MathDialRecord:
    qid: str
    question: str
    solution: str
    final_answer: str
    student_incorrect_solution: str = ""
    student_profile: str = ""
    teacher_described_confusion: str = ""
    turns: list[DialogueTurn] = field(default_factory=list)


def final_answer_of(solution: str) -> str:
    """MathDial (like GSM8K) puts the final answer alone on the solution's last line."""
    lines = [line.strip() for line in solution.strip().splitlines() if line.strip()]
    if not lines:
        raise MathDialFormatError("empty solution")
    answer = lines[-1]
    if answer.startswith("####"):
        answer = answer[4:].strip()
    return answer


def parse_conversation(conversation: str) -> list[DialogueTurn]:
    turns = []
    for raw in conversation.split(TURN_SEPARATOR):
        raw = raw.strip()
        if not raw:
            continue
        speaker, _, text = raw.partition(":")
        speaker = speaker.strip().lower()
        if speaker not in {"teacher", "student"}:
            continue
        text = text.strip()
        move = ""
        if speaker == "teacher":
            match = _MOVE.match(text)
            if match:
                move = match.group(1).lower()
                text = text[match.end() :]
        turns.append(DialogueTurn(speaker=speaker, text=text, move=move))
    return turns


def parse_row(row: dict) -> MathDialRecord:
    try:
        question = str(row["question"]).strip()
        solution = str(row["ground_truth"]).strip()
    except KeyError as exc:
        raise MathDialFormatError(f"missing field {exc.args[0]!r}") from exc
    if not question:
        raise MathDialFormatError("empty question")
    solution_lines = solution.splitlines()
    return MathDialRecord(
        qid=str(row.get("qid", "")),
        question=question,
        solution="\n".join(solution_lines[:-1]).strip() or solution,
        final_answer=final_answer_of(solution),
        student_incorrect_solution=str(row.get("student_incorrect_solution") or "").strip(),
        student_profile=str(row.get("student_profile") or "").strip(),
        teacher_described_confusion=str(row.get("teacher_described_confusion") or "").strip(),
        turns=parse_conversation(str(row.get("conversation") or "")),
    )


def read_mathdial(path: str | Path) -> Iterator[MathDialRecord]:
    """Yield records from a MathDial JSONL file; a bad line raises with its line number."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield parse_row(json.loads(line))
            except (json.JSONDecodeError, MathDialFormatError) as exc:
                raise MathDialFormatError(f"{path}:{number}: {exc}") from exc
