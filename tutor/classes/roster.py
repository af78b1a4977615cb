"""Reading a class roster from a CSV file: one student per row, a username and names.

Pure Python (no Django), so it is fuzzed on its own (tests/unit/test_accounts_roster_csv.py).
The work is bounded: the size is checked before anything is decoded, the rows are counted as
they are read, and every check is linear in the row's length.

A first row naming the columns is optional (``username, first_name, last_name`` in that order
without one). Known column names, in any case: ``username``/``user``/``login``,
``first_name``/``first name``/``given name``, ``last_name``/``last name``/``surname``/``family
name``, and ``name`` (a full name, split at its first space); see :func:`header_columns`.
Commas, semicolons or tabs separate the cells, as spreadsheets in different languages save
them.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

# Django's username rule (UnicodeUsernameValidator): letters, digits and @ . + - _.
USERNAME_MAX = 150
USERNAME = re.compile(r"[\w.@+-]+")
NAME_MAX = 150

COLUMNS = {
    "username": "username",
    "user": "username",
    "user name": "username",
    "login": "username",
    "first_name": "first_name",
    "first name": "first_name",
    "firstname": "first_name",
    "given name": "first_name",
    "last_name": "last_name",
    "last name": "last_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family name": "last_name",
    "name": "name",
    "full name": "name",
}
DEFAULT_COLUMNS = ("username", "first_name", "last_name")


@dataclass(frozen=True)
class RosterRow:
    line: int
    username: str
    first_name: str
    last_name: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class RejectedRow:
    line: int
    username: str
    reason: str


@dataclass
class Roster:
    """The rows to import and the rows refused, each with its line in the file. ``error`` is
    set when the whole file is refused (then there are no rows)."""

    rows: list[RosterRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    error: str = ""


def _header_key(cell: str) -> str:
    return " ".join(cell.strip().lower().replace("-", " ").split())


def header_columns(cells: list[str]) -> list[str | None] | None:
    """The meaning of each cell if ``cells`` is a header row, else None. A header names the
    username column or at least two known columns: a first student whose name happens to be
    "Name" is still a student."""
    keys = [COLUMNS.get(_header_key(cell)) for cell in cells]
    if "username" in keys or sum(key is not None for key in keys) >= 2:
        return keys
    return None


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def _check_name(value: str, what: str) -> str:
    if len(value) > NAME_MAX:
        return f"the {what} is longer than {NAME_MAX} characters"
    if _has_control(value):
        return f"the {what} has control characters"
    return ""


def _check_username(username: str) -> str:
    if not username:
        return "no username"
    if len(username) > USERNAME_MAX:
        return f"the username is longer than {USERNAME_MAX} characters"
    if not USERNAME.fullmatch(username):
        return "a username may have only letters, digits and @ . + - _ (no spaces)"
    return ""


def parse_roster(data: bytes, *, max_bytes: int, max_rows: int) -> Roster:
    """The students in a roster file; never raises on any input."""
    if len(data) > max_bytes:
        return Roster(error=f"The file is larger than {max_bytes // 1024} KB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Roster(error="The file is not UTF-8 text: save it as “CSV UTF-8” and try again.")
    if "\x00" in text:
        return Roster(error="The file is not a CSV text file.")

    roster = Roster()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=False)
    columns: list[str | None] | None = None
    seen: dict[str, int] = {}
    data_rows = 0
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                header = header_columns(cells)
                if header is not None:
                    if "username" not in header:
                        return Roster(error="The first row names no username column.")
                    columns = header
                    continue
                columns = list(DEFAULT_COLUMNS)
            data_rows += 1
            if data_rows > max_rows:
                return Roster(
                    error=f"The file has more than {max_rows} students: split it into smaller "
                    "files."
                )
            _read_row(roster, seen, line, cells, columns)
    except csv.Error as exc:
        return Roster(error=f"The file is not valid CSV near line {reader.line_num}: {exc}.")
    if columns is None or (not roster.rows and not roster.rejected):
        return Roster(error="The file has no students in it.")
    return roster


def _read_row(
    roster: Roster, seen: dict[str, int], line: int, cells: list[str], columns: list[str | None]
) -> None:
    values = {"username": "", "first_name": "", "last_name": "", "name": ""}
    for meaning, cell in zip(columns, cells, strict=False):
        if meaning is not None:
            values[meaning] = cell.strip()
    first, last = values["first_name"], values["last_name"]
    if values["name"] and not (first or last):
        first, _, last = values["name"].partition(" ")
        last = last.strip()
    username = values["username"]
    shown = username[:USERNAME_MAX]
    reason = (
        _check_username(username)
        or _check_name(first, "first name")
        or _check_name(last, "last name")
    )
    if not reason:
        key = username.lower()
        if key in seen:
            reason = f"the same username as line {seen[key]}"
        else:
            seen[key] = line
    if reason:
        roster.rejected.append(RejectedRow(line, shown, reason))
    else:
        roster.rows.append(RosterRow(line, username, first, last))
