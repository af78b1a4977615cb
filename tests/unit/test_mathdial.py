import json
from pathlib import Path

import pytest

from training.data.mathdial import (
    MathDialFormatError,
    final_answer_of,
    parse_conversation,
    read_mathdial,
)

pytestmark = pytest.mark.unit

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mathdial_test.jsonl"


def test_final_answer_is_the_last_line():
    assert final_answer_of("12+3=15\n15-5=10\n 10") == "10"
    assert final_answer_of("x\n#### 42") == "42"


def test_conversation_turns_and_teacher_moves():
    turns = parse_conversation(
        "Teacher: (generic)Hi Mia|EOM|Student: I got 9|EOM|Teacher: (probing) Why 9?"
    )
    assert [(t.speaker, t.move, t.text) for t in turns] == [
        ("teacher", "generic", "Hi Mia"),
        ("student", "", "I got 9"),
        ("teacher", "probing", "Why 9?"),
    ]


def test_bad_line_names_its_line_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = {"qid": 1, "question": "q?", "ground_truth": "a\n 3"}
    path.write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(MathDialFormatError, match=r"bad\.jsonl:2"):
        list(read_mathdial(path))


@pytest.mark.skipif(not SHARED.exists(), reason="shared MathDial data not beside the checkout")
def test_reads_the_shared_mathdial_test_split():
    records = list(read_mathdial(SHARED))
    assert len(records) == 599
    first = records[0]
    assert first.final_answer == "10"
    assert first.student_profile.startswith("Mariana")
    assert first.turns[0].speaker == "teacher" and first.turns[0].move == "generic"
