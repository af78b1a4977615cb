import json
from pathlib import Path

import pytest

from training.data.mathtutorbench import (
    MathTutorBenchFormatError,
    bridge_files,
    read_mathtutorbench,
)

pytestmark = pytest.mark.unit

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ITEM = {
    "problem": "Ignatius owns 4 bicycles. How many tires do they have?",
    "topic": "Math Word Problem",
    "reference_solution": "Each bicycle has 2 tires\n2 x 4 = 8\n 8",
    "dialog_history": [
        {"text": "Tell me your solution", "user": "Teacher"},
        {"text": "I think 6.", "user": "Student"},
        {"text": "How many tires does one bicycle have?", "user": "Teacher"},
    ],
}


def test_reads_items_and_history(tmp_path):
    path = tmp_path / "bridge.json"
    path.write_text(json.dumps([ITEM, {**ITEM, "topic": ""}]))
    items = list(read_mathtutorbench(path))
    assert len(items) == 2
    item = items[0]
    assert item.problem.startswith("Ignatius")
    assert item.topic == "Math Word Problem"
    assert item.final_answer == "8"
    assert [(t.speaker, t.text) for t in item.history] == [
        ("teacher", "Tell me your solution"),
        ("student", "I think 6."),
        ("teacher", "How many tires does one bicycle have?"),
    ]
    assert item.last_student_text == "I think 6."


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{oops", "not JSON"),
        (json.dumps({"problem": "x"}), "JSON list"),
        (json.dumps([{"problem": "x", "reference_solution": "1"}]), r"\[0\].*dialog_history"),
        (
            json.dumps([{**ITEM, "dialog_history": [{"user": "Robot", "text": "hi"}]}]),
            "unknown user",
        ),
    ],
)
def test_bad_files_raise_with_their_place(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(MathTutorBenchFormatError, match=match):
        list(read_mathtutorbench(path))


def test_bridge_files_finds_both_sets(tmp_path):
    for name in ("mathtutorbench_mathdial_bridge.json", "mathtutorbench_mathdial_bridge_hard.json"):
        (tmp_path / name).write_text("[]")
    (tmp_path / "other.json").write_text("[]")
    assert [p.name for p in bridge_files(tmp_path)] == [
        "mathtutorbench_mathdial_bridge.json",
        "mathtutorbench_mathdial_bridge_hard.json",
    ]


@pytest.mark.skipif(
    not (SHARED / "mathtutorbench_mathdial_bridge.json").exists(), reason="shared data missing"
)
def test_shared_files_parse():
    counts = {p.name: len(list(read_mathtutorbench(p))) for p in bridge_files(SHARED)}
    assert counts["mathtutorbench_mathdial_bridge.json"] == 1150
    assert counts.get("mathtutorbench_mathdial_bridge_hard.json", 327) == 327
    item = next(read_mathtutorbench(SHARED / "mathtutorbench_mathdial_bridge.json"))
    assert item.final_answer and item.history and item.has_problem
    assert all(
        i.history for i in read_mathtutorbench(SHARED / "mathtutorbench_mathdial_bridge.json")
    )


def test_bridge_items_without_problem_are_read(tmp_path):
    path = tmp_path / "bridge.json"
    bridge = {**ITEM, "problem": "", "reference_solution": "N/A", "topic": "Shapes"}
    path.write_text(json.dumps([bridge]))
    (item,) = read_mathtutorbench(path)
    assert item.problem == "" and item.final_answer == ""
    assert not item.has_problem
    assert len(item.history) == 3
