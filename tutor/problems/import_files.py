"""Reading a teacher's CSV or JSONL file of problems into rows of text fields, with a reason
for every row that cannot be read. Validating the rows is the editor form's job
(:mod:`tutor.problems.importing`); this module only reads, and imports nothing of Django.

Bounded: the caller refuses files over :data:`MAX_IMPORT_BYTES` before reading; at most
:data:`MAX_IMPORT_ROWS` rows are read, and a longer file is refused as a whole.

Rows are numbered as a person finds them: in a CSV file the header is row 1 and each record
(a quoted value may span lines) is one row, blank ones included, as a spreadsheet shows them;
in a JSONL file each line is a row.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

MAX_IMPORT_BYTES = 1_000_000
MAX_IMPORT_ROWS = 200

COLUMNS = (
    "title",
    "text",
    "final_answer",
    "solution",
    "skills",
    "difficulty",
    "require_simplest_form",
    "shared",
)
REQUIRED_COLUMNS = ("text", "final_answer", "solution")
BOOLEAN_COLUMNS = ("require_simplest_form", "shared")
# Other names people give these columns.
ALIASES = {
    "question": "text",
    "problem": "text",
    "answer": "final_answer",
    "worked_solution": "solution",
    "skill": "skills",
    "simplest_form": "require_simplest_form",
    "simplest": "require_simplest_form",
}
TRUE_WORDS = {"1", "true", "yes", "y", "on", "x"}
FALSE_WORDS = {"", "0", "false", "no", "n", "off"}
FORMATS = ("csv", "jsonl")


@dataclass
class RowProblem:
    row: int
    reasons: list[str]


@dataclass
class ReadResult:
    """What was read: ``rows`` are (row number, field -> text); ``rejected`` the rows that could
    not be read; ``error`` a reason to refuse the whole file (then nothing else counts)."""

    format: str = ""
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def row_count(self) -> int:
        return len(self.rows) + len(self.rejected)


def column_name(name: str) -> str:
    key = "_".join(name.strip().lower().replace("-", " ").split())
    return ALIASES.get(key, key)


def guess_format(filename: str, text: str) -> str:
    lower = filename.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def decode(data: bytes) -> str:
    """The file as text: UTF-8 (a byte-order mark is dropped). Raises ValueError saying where."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read). "
            "Save it as “CSV UTF-8” or as UTF-8 text and try again."
        ) from None


def read_problem_file(data: bytes, filename: str = "", fmt: str = "auto") -> ReadResult:
    """Read ``data`` (CSV with a header row, or JSONL: one JSON object a line)."""
    if len(data) > MAX_IMPORT_BYTES:
        return ReadResult(error=_too_big())
    try:
        text = decode(data)
    except ValueError as exc:
        return ReadResult(error=str(exc))
    if not text.strip():
        return ReadResult(error="The file is empty.")
    if fmt not in FORMATS:
        fmt = guess_format(filename, text)
    result = _read_csv(text) if fmt == "csv" else _read_jsonl(text)
    result.format = fmt
    if not result.error and result.row_count == 0:
        result.error = "The file has no problems in it, only a header."
    return result


def _too_big() -> str:
    return (
        f"The file is larger than {MAX_IMPORT_BYTES // 1_000_000} MB. "
        f"Split it into files of at most {MAX_IMPORT_ROWS} problems."
    )


def _too_many() -> str:
    return (
        f"The file has more than {MAX_IMPORT_ROWS} problems. "
        f"Split it into files of at most {MAX_IMPORT_ROWS} problems."
    )


def _read_csv(text: str) -> ReadResult:
    result = ReadResult()
    records = csv.reader(io.StringIO(text, newline=""), strict=True)
    number = 0
    header: list[str] | None = None
    try:
        for number, record in enumerate(records, start=1):
            if not any(value.strip() for value in record):
                continue
            if header is None:
                header, problem = _csv_header(record)
                if problem:
                    return ReadResult(error=problem)
                result.ignored_columns = [
                    name.strip()[:40]
                    for name, key in zip(record, header, strict=True)
                    if key not in COLUMNS
                ][:20]
                continue
            if result.row_count >= MAX_IMPORT_ROWS:
                return ReadResult(error=_too_many())
            if len(record) > len(header):
                result.rejected.append(
                    RowProblem(
                        number,
                        [f"It has {len(record)} values but the header has {len(header)} columns"],
                    )
                )
                continue
            values = dict(zip(header, record, strict=False))
            row = {key: values.get(key, "") for key in COLUMNS}
            reasons = _normalise_booleans(row)
            if reasons:
                result.rejected.append(RowProblem(number, reasons))
            else:
                result.rows.append((number, row))
    except csv.Error as exc:
        return ReadResult(
            error=f"Row {number + 1} cannot be read as CSV ({exc}). Nothing was imported."
        )
    if header is None:
        return ReadResult(error="The file is empty.")
    return result


def _csv_header(record: list[str]) -> tuple[list[str], str]:
    header = [column_name(name) for name in record]
    known = [key for key in header if key in COLUMNS]
    duplicates = sorted({key for key in known if known.count(key) > 1})
    if duplicates:
        return header, f"The header names the column {duplicates[0]} more than once."
    missing = [key for key in REQUIRED_COLUMNS if key not in header]
    if missing:
        shown = ", ".join(name.strip()[:40] for name in record[:12])
        return header, (
            f"The first row must name the columns; it has no {', '.join(missing)} column "
            f"(it has: {shown}). Columns: {', '.join(COLUMNS)}."
        )
    return header, ""


def _read_jsonl(text: str) -> ReadResult:
    result = ReadResult()
    ignored: set[str] = set()
    # Lines end at "\n" only: JSON strings may hold other line separators (U+2028).
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if result.row_count >= MAX_IMPORT_ROWS:
            return ReadResult(error=_too_many())
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            result.rejected.append(RowProblem(number, [f"Not valid JSON ({exc.msg})"]))
            continue
        except (ValueError, RecursionError):  # an integer too long to read, deep nesting
            result.rejected.append(RowProblem(number, ["Not valid JSON"]))
            continue
        if not isinstance(value, dict):
            result.rejected.append(RowProblem(number, ["Not a JSON object ({...})"]))
            continue
        row, reasons = _json_row(value, ignored)
        reasons += _normalise_booleans(row)
        if reasons:
            result.rejected.append(RowProblem(number, reasons))
        else:
            result.rows.append((number, row))
    result.ignored_columns = sorted(ignored)[:20]
    return result


def _json_row(value: dict, ignored: set[str]) -> tuple[dict[str, str], list[str]]:
    row = dict.fromkeys(COLUMNS, "")
    reasons = []
    for raw_key, item in value.items():
        key = column_name(str(raw_key))
        if key not in COLUMNS:
            ignored.add(str(raw_key)[:40])
            continue
        text = _json_text(key, item)
        if text is None:
            reasons.append(f"{key} must be text, a number{_list_hint(key)}")
        else:
            row[key] = text
    return row, reasons


def _list_hint(key: str) -> str:
    if key == "skills":
        return " or a list of texts"
    if key in BOOLEAN_COLUMNS:
        return " or true/false"
    return ""


def _json_text(key: str, item: object) -> str | None:
    """A JSON value as the text a form field takes, or None when it has no such form."""
    if item is None:
        return ""
    if isinstance(item, bool):
        if key not in BOOLEAN_COLUMNS:
            return None
        return "true" if item else "false"
    if isinstance(item, str):
        return item
    if isinstance(item, int | float):
        return str(item)
    if key == "skills" and isinstance(item, list) and all(isinstance(s, str) for s in item):
        return ", ".join(item)
    return None


def _normalise_booleans(row: dict[str, str]) -> list[str]:
    """yes/no columns as the form reads them ("true" or ""); reasons for values that are
    neither."""
    reasons = []
    for key in BOOLEAN_COLUMNS:
        word = row[key].strip().lower()
        if word in TRUE_WORDS:
            row[key] = "true"
        elif word in FALSE_WORDS:
            row[key] = ""
        else:
            reasons.append(f"{key} must be yes or no, not “{row[key][:20]}”")
    return reasons
