"""The demo's material: MathDial's real tutoring dialogues (Macina et al., 2023), read from the
shared data folder with the project's reader (:mod:`training.data.mathdial`), never copied into
the repository.

A dialogue becomes a chat as the platform would hold it: the student opens with the simulated
student's templated first message (:func:`training.simulated_student.opening_message`, which
shows the real student's incorrect attempt), then MathDial's turns follow, its teacher's turns as
the tutor's and its student's as the student's, consecutive turns of one speaker joined.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pedagogy import numbers
from training.data.mathdial import MathDialRecord, read_mathdial
from training.data.mathtutorbench import shared_data_dir
from training.simulated_student import StudentProfile, extract_final_answer, opening_message

from .statements import leaked_turns, problem_values

MATHDIAL_FILE = "mathdial_test.jsonl"
#: Dialogues with fewer turns (the opening included) make a thin review.
MIN_TURNS = 5
#: Longest text of one turn kept (MathDial's are far shorter; the chat's own limit is higher).
MAX_TURN_CHARS = 1500

#: Longest incorrect solution read for its final answer.
MAX_SOLUTION_CHARS = 8000

STUDENT = "student"
TUTOR = "tutor"


@dataclass(frozen=True)
class DemoTurn:
    speaker: str  # STUDENT or TUTOR
    text: str
    move: str = ""  # MathDial's teacher move on a tutor turn: focus, probing, telling, generic


@dataclass(frozen=True)
class DemoDialogue:
    """One MathDial dialogue as a chat. ``leaks``: the tutor turns (by index) that state the
    final answer before the student has, with where they state it. ``persona``: the name the
    MathDial teacher calls the student by. ``first_answer``: the real student's incorrect
    answer."""

    turns: tuple[DemoTurn, ...]
    leaks: tuple[tuple[int, tuple[int, int]], ...]
    persona: str
    first_answer: str

    @property
    def leaks_answer(self) -> bool:
        return bool(self.leaks)

    def leak_at(self, index: int) -> str:
        """The value turn ``index`` gives away, as written; "" when it gives nothing away."""
        for leaked, (start, end) in self.leaks:
            if leaked == index:
                return self.turns[index].text[start:end]
        return ""


@dataclass(frozen=True)
class DemoProblem:
    """A MathDial problem and its dialogues (MathDial has several per problem)."""

    record: MathDialRecord  # the first row of the problem: what the bank holds
    dialogues: tuple[DemoDialogue, ...]

    @property
    def qid(self) -> str:
        return self.record.qid

    @property
    def mixed(self) -> bool:
        """Some dialogues give the answer away and some do not: a blocked attempt can come
        from one and be shown in the other."""
        leaking = sum(d.leaks_answer for d in self.dialogues)
        return 0 < leaking < len(self.dialogues)


def mathdial_path() -> Path:
    """The MathDial file where the project reads it (``TUTOR_SHARED_DATA`` or
    ``../shared/data`` beside the checkout)."""
    return shared_data_dir() / MATHDIAL_FILE


def _joined(record: MathDialRecord, max_chars: int) -> list[DemoTurn]:
    profile = StudentProfile.from_mathdial(record)
    turns = [DemoTurn(STUDENT, opening_message(profile)[:max_chars])]
    for turn in record.turns:
        speaker = TUTOR if turn.speaker == "teacher" else STUDENT
        text = turn.text.strip()
        if not text:
            continue
        last = turns[-1]
        if last.speaker == speaker:
            turns[-1] = DemoTurn(speaker, f"{last.text}\n\n{text}"[:max_chars], last.move)
        else:
            turns.append(DemoTurn(speaker, text[:max_chars], turn.move))
    return turns


def dialogue_of(record: MathDialRecord, max_chars: int = MAX_TURN_CHARS) -> DemoDialogue:
    turns = _joined(record, max_chars)
    leaks = leaked_turns([(t.speaker, t.text) for t in turns], record.final_answer, record.question)
    return DemoDialogue(
        turns=tuple(turns),
        leaks=tuple(sorted(leaks.items())),
        persona=StudentProfile.from_mathdial(record).name,
        first_answer=_first_answer(record.student_incorrect_solution),
    )


def _first_answer(solution: str) -> str:
    """The answer the real student's incorrect solution ends on; "" for one too long to read
    (MathDial's are far shorter)."""
    if len(solution) > MAX_SOLUTION_CHARS:
        return ""
    return extract_final_answer(solution)


def _usable(record: MathDialRecord, dialogue: DemoDialogue) -> bool:
    """A dialogue the demo can show: long enough, with a first answer that is one number and
    wrong, as MathDial's are."""
    gold = numbers.answer_value(record.final_answer)
    first = numbers.answer_value(dialogue.first_answer) if dialogue.first_answer else None
    return len(dialogue.turns) >= MIN_TURNS and first is not None and first != gold


def _plain_answer(record: MathDialRecord) -> bool:
    """One number, which the problem does not give: whether a turn states it can be told."""
    gold = numbers.answer_value(record.final_answer)
    return gold is not None and gold not in problem_values(record.question)


def _training_split(qid: str) -> bool:
    # Imported here: training.dataset pulls in the rollout code, which the rest of the demo
    # does not need.
    from training.dataset import is_heldout

    return not is_heldout(f"mathdial:{qid}")


def candidates(
    records: Iterable[MathDialRecord], *, min_dialogues: int = 2
) -> dict[str, list[MathDialRecord]]:
    """MathDial's rows by problem, for problems of the training split (never the held-out
    problems evaluation measures on, so that a retraining job on the demo class has data) with
    a plain-number answer and at least ``min_dialogues`` dialogues, in file order."""
    grouped: dict[str, list[MathDialRecord]] = defaultdict(list)
    for record in records:
        grouped[record.qid].append(record)
    return {
        qid: rows
        for qid, rows in grouped.items()
        if len(rows) >= min_dialogues and _training_split(qid) and _plain_answer(rows[0])
    }


def demo_problem(rows: list[MathDialRecord], *, min_dialogues: int = 2) -> DemoProblem | None:
    """The problem of ``rows`` (one problem's) with its usable dialogues; None when fewer than
    ``min_dialogues`` are."""
    dialogues = tuple(d for d in map(dialogue_of, rows) if _usable(rows[0], d))
    if len(dialogues) < min_dialogues:
        return None
    return DemoProblem(record=rows[0], dialogues=dialogues)


def choose_problems(
    groups: dict[str, list[MathDialRecord]], count: int, rng: random.Random, *, mixed: int = 2
) -> list[DemoProblem]:
    """``count`` problems of ``groups`` (from :func:`candidates`) drawn with ``rng``, at least
    ``mixed`` of them (when there are) with both leaking and clean dialogues, in a drawn order.
    Dialogues are read only for the problems looked at."""
    order = sorted(groups)
    rng.shuffle(order)
    with_both: list[DemoProblem] = []
    others: list[DemoProblem] = []
    for qid in order:
        if len(with_both) >= mixed and len(others) >= count - mixed:
            break
        problem = demo_problem(groups[qid])
        if problem is not None:
            (with_both if problem.mixed else others).append(problem)
    chosen = with_both[:mixed]
    chosen += (others + with_both[mixed:])[: count - len(chosen)]
    rng.shuffle(chosen)
    return chosen


def load_candidates(path: Path | None = None) -> dict[str, list[MathDialRecord]]:
    """:func:`candidates` of the MathDial file ``path`` (default :func:`mathdial_path`).
    Raises ``FileNotFoundError`` when the file is missing and
    :class:`training.data.mathdial.MathDialFormatError` when it is malformed."""
    return candidates(read_mathdial(path or mathdial_path()))
