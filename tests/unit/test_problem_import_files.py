"""Reading teachers' CSV and JSONL files of problems (tutor/problems/import_files.py): any bytes
give rows or reasons, never an exception; rows are numbered as a person finds them; what a
spreadsheet writes is read back as it was written."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tutor.problems.import_files import (
    COLUMNS,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_ROWS,
    read_problem_file,
)

pytestmark = pytest.mark.unit

HEADER = "text,final_answer,solution\n"


@given(data=st.binary(max_size=2000), name=st.sampled_from(["a.csv", "a.jsonl", "a", ""]))
def test_any_bytes_give_rows_or_reasons(data, name):
    result = read_problem_file(data, name)
    assert result.error or result.row_count > 0
    if result.error:
        assert not result.rows and not result.rejected
    numbers = [n for n, _ in result.rows] + [p.row for p in result.rejected]
    assert len(numbers) == len(set(numbers))
    assert all(n >= 1 for n in numbers)
    assert result.row_count <= MAX_IMPORT_ROWS
    for _, row in result.rows:
        assert set(row) == set(COLUMNS)
        assert all(isinstance(v, str) for v in row.values())
        assert row["require_simplest_form"] in ("true", "") and row["shared"] in ("true", "")
    for problem in result.rejected:
        assert problem.reasons and all(isinstance(r, str) and r for r in problem.reasons)


@given(text=st.text(max_size=1500))
def test_any_text_after_a_header_is_read_without_exceptions(text):
    for data in ((HEADER + text).encode(), text.encode()):
        for fmt in ("csv", "jsonl", "auto"):
            result = read_problem_file(data, "x", fmt)
            assert result.error or result.row_count > 0


cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    max_size=60,
)


@given(rows=st.lists(st.tuples(cell, cell, cell), min_size=1, max_size=30))
def test_what_a_csv_writer_writes_is_read_back_with_spreadsheet_row_numbers(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "final_answer", "solution"])
    writer.writerows(rows)
    result = read_problem_file(out.getvalue().encode(), "p.csv")
    expected = [
        (number, row)
        for number, row in enumerate(rows, start=2)
        if any(value.strip() for value in row)
    ]
    if not expected:
        assert result.error
        return
    assert not result.rejected
    assert [(n, (r["text"], r["final_answer"], r["solution"])) for n, r in result.rows] == expected


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    records=st.lists(
        st.fixed_dictionaries(
            {"text": cell, "final_answer": st.one_of(cell, st.integers(-(10**6), 10**6))},
            optional={"skills": st.lists(cell, max_size=3), "shared": st.booleans()},
        ),
        min_size=1,
        max_size=20,
    )
)
def test_jsonl_lines_are_read_back_by_line_number(records):
    data = "\n".join(json.dumps(r) for r in records).encode()
    result = read_problem_file(data, "p.jsonl")
    assert not result.error and not result.rejected
    assert [n for n, _ in result.rows] == list(range(1, len(records) + 1))
    for (_, row), record in zip(result.rows, records, strict=True):
        assert row["text"] == record["text"]
        assert row["final_answer"] == str(record["final_answer"])
        assert row["shared"] == ("true" if record.get("shared") else "")


def test_a_file_over_the_limits_is_refused_as_a_whole():
    assert "larger than" in read_problem_file(b"x" * (MAX_IMPORT_BYTES + 1), "p.csv").error
    many = (HEADER + "q,1,s\n" * (MAX_IMPORT_ROWS + 1)).encode()
    assert f"more than {MAX_IMPORT_ROWS}" in read_problem_file(many, "p.csv").error
    exactly = (HEADER + "q,1,s\n" * MAX_IMPORT_ROWS).encode()
    assert len(read_problem_file(exactly, "p.csv").rows) == MAX_IMPORT_ROWS


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xff\xfe\x00", "not UTF-8 text (byte 1"),
        (b"   \n\n", "The file is empty"),
        (b"title,answer\n", "no text, solution column"),
        (b'text,final_answer,solution\nq,"1,s\n', "Row 2 cannot be read as CSV"),
    ],
)
def test_whole_file_errors_say_what_is_wrong(data, error):
    assert error in read_problem_file(data, "p.csv").error


def test_rows_with_too_many_values_or_bad_yes_no_are_rejected_with_reasons():
    data = (
        "Text,Answer,Worked solution,Simplest form,Notes\n"
        "q1,1,s,yes,keep\n"
        "q2,2,s,perhaps,\n"
        "q3,3,s,no,x,extra\n"
        "\n"
        "q4,4,s,,\n"
    ).encode("utf-8-sig")
    result = read_problem_file(data, "p.csv")
    assert result.ignored_columns == ["Notes"]
    assert [(n, r["text"], r["require_simplest_form"]) for n, r in result.rows] == [
        (2, "q1", "true"),
        (6, "q4", ""),
    ]
    assert [(p.row, p.reasons) for p in result.rejected] == [
        (3, ["require_simplest_form must be yes or no, not “perhaps”"]),
        (4, ["It has 6 values but the header has 5 columns"]),
    ]


def test_the_format_follows_the_name_then_the_content():
    line = json.dumps({"text": "q", "final_answer": "1", "solution": "s"}).encode()
    assert read_problem_file(line, "p.jsonl").format == "jsonl"
    assert read_problem_file(line, "upload").format == "jsonl"
    assert read_problem_file((HEADER + "q,1,s\n").encode(), "upload").format == "csv"
    assert read_problem_file(line, "p.csv", "jsonl").format == "jsonl"
