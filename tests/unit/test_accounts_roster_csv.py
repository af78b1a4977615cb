"""The roster CSV parser (tutor/classes/roster.py): examples, and properties on any input."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tutor.classes.roster import USERNAME, header_columns, parse_roster

pytestmark = pytest.mark.unit

LIMITS = {"max_bytes": 4096, "max_rows": 20}


def parse(text: str, **limits):
    return parse_roster(text.encode("utf-8"), **{**LIMITS, **limits})


def test_rows_with_a_header_in_any_order_and_case():
    roster = parse("Last Name,USERNAME,first name\nLovelace,ada,Ada\nHopper,grace,Grace\n")
    assert not roster.error and not roster.rejected
    assert [(r.line, r.username, r.first_name, r.last_name) for r in roster.rows] == [
        (2, "ada", "Ada", "Lovelace"),
        (3, "grace", "Grace", "Hopper"),
    ]


def test_rows_without_a_header_are_username_first_last():
    roster = parse("ada,Ada,Lovelace\n\n  \ngrace,Grace\n")
    assert [(r.line, r.username, r.name) for r in roster.rows] == [
        (1, "ada", "Ada Lovelace"),
        (4, "grace", "Grace"),
    ]


def test_semicolons_tabs_a_bom_and_a_full_name_column():
    roster = parse_roster("\ufeffusername;name\nada;Ada King Lovelace\n".encode(), **LIMITS)
    assert [(r.first_name, r.last_name) for r in roster.rows] == [("Ada", "King Lovelace")]
    roster = parse("username\tfirst_name\nada\tAda\n")
    assert [(r.username, r.first_name) for r in roster.rows] == [("ada", "Ada")]


def test_each_bad_row_is_reported_with_its_line_and_reason():
    roster = parse(
        "username,first_name,last_name\n"
        "ada,Ada,Lovelace\n"
        "ADA,Ada,Again\n"
        "bad name,Bad,Name\n"
        ",No,Username\n"
        f"long,{'x' * 151},Name\n"
        "ctrl,Ok,Bad\x07\n"
        "grace,Grace,Hopper\n"
    )
    assert [r.username for r in roster.rows] == ["ada", "grace"]
    reasons = {r.line: r.reason for r in roster.rejected}
    assert reasons[3] == "the same username as line 2"
    assert "only letters, digits" in reasons[4]
    assert reasons[5] == "no username"
    assert "longer than 150" in reasons[6]
    assert "control characters" in reasons[7]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x" * 5000, "larger than 4 KB"),
        (b"\xff\xfeu\x00s\x00", "not UTF-8"),
        (b"ada,\x00Ada\n", "not a CSV text file"),
        (b"", "no students"),
        (b"\n\n , \n", "no students"),
        (b"email,first name,surname\nada@example.org,Ada,King\n", "no username column"),
        (b"".join(b"s%d,S\n" % i for i in range(21)), "more than 20 students"),
    ],
)
def test_whole_file_errors(data, message):
    roster = parse_roster(data, **LIMITS)
    assert message in roster.error
    assert not roster.rows and not roster.rejected


# ---- properties ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=6000))
def test_any_bytes_give_a_report_within_the_bounds(data):
    roster = parse_roster(data, **LIMITS)
    if roster.error:
        assert not roster.rows and not roster.rejected
        return
    assert len(roster.rows) + len(roster.rejected) <= LIMITS["max_rows"]
    _check_accepted(roster)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=3000))
def test_any_text_gives_a_report_within_the_bounds(text):
    roster = parse(text)
    if not roster.error:
        assert len(roster.rows) + len(roster.rejected) <= LIMITS["max_rows"]
        _check_accepted(roster)


def _check_accepted(roster):
    keys = [r.username.lower() for r in roster.rows]
    assert len(keys) == len(set(keys))
    for row in roster.rows:
        assert USERNAME.fullmatch(row.username) and len(row.username) <= 150
        assert len(row.first_name) <= 150 and len(row.last_name) <= 150
        assert row.first_name == row.first_name.strip()
    lines = [r.line for r in roster.rows]
    assert lines == sorted(lines)


usernames = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789._@+-", min_size=1, max_size=30
).filter(lambda u: u.strip())
names = st.text(
    alphabet=st.characters(
        categories=["L", "M", "N", "Zs", "P"], exclude_characters="\u2028\u2029\x85"
    ),
    max_size=40,
).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(usernames, names, names), max_size=20, unique_by=lambda r: r[0].lower()),
    st.sampled_from([",", ";", "\t"]),
    st.booleans(),
)
def test_a_roster_written_by_a_csv_writer_reads_back(rows, delimiter, header):
    # Without a header, a first row that reads as one is taken as one (documented).
    assume(header or not rows or header_columns(list(rows[0])) is None)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    if header:
        writer.writerow(["username", "first_name", "last_name"])
    writer.writerows(rows)
    roster = parse(out.getvalue())
    if not rows:
        assert roster.error
        return
    assert not roster.error and not roster.rejected
    assert [(r.username, r.first_name, r.last_name) for r in roster.rows] == rows


def test_a_first_student_named_like_a_column_is_still_a_student():
    roster = parse("ada,Name,Lovelace\n")
    assert [(r.username, r.first_name) for r in roster.rows] == [("ada", "Name")]
    # A header that names columns but no username column is refused, not read as a student.
    assert "no username column" in parse("email,first name,last name\nx,Ada,L\n").error
