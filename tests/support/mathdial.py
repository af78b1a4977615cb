"""A tiny MathDial file of held-out items, for evaluations run against a scripted server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

# Three held-out problems (ids that training.dataset.is_heldout keeps out of training), each
# with a student's wrong solution, in MathDial's row shape.
HELD_OUT_ROWS = [
    {
        "qid": qid,
        "question": f"A bag holds {n} marbles. How many marbles are in 2 bags?",
        "ground_truth": f"{n}*2={2 * n}\n {2 * n}",
        "student_incorrect_solution": f"{n}+2={n + 2}\n {n + 2}",
        "student_profile": "Zoe is a 6th grade student.",
        "teacher_described_confusion": "",
        "conversation": "",
    }
    for qid, n in ((1, 3), (2, 4), (4, 5))
]


def write_mathdial(folder: Path, rows: Sequence[dict] = HELD_OUT_ROWS) -> Path:
    """``folder/mathdial.jsonl`` holding ``rows`` (JSON lines); its path."""
    path = folder / "mathdial.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
