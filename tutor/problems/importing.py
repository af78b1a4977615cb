"""Importing a teacher's file of problems: every row is validated by the editor's own form
(the same bounds and the same final-answer check), then the valid rows are created for the
teacher.

All or nothing by default: when any row is rejected nothing is imported, so the teacher fixes
the file and uploads it again without creating some problems twice. The teacher may instead
ask to import the valid rows and skip the rejected ones; rows already imported (the same text
and final answer among the teacher's problems) are skipped either way, so uploading the fixed
file again adds only what is missing.

Checking final answers is bounded per row (the grader's pool limit) and for the whole file
(:data:`IMPORT_TIME_BUDGET_SECONDS`): rows left when the budget runs out are rejected as not
checked, and the teacher splits the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from .forms import ProblemForm
from .import_files import ReadResult, RowProblem, read_problem_file
from .models import Problem

IMPORT_TIME_BUDGET_SECONDS = 20.0


@dataclass
class ImportReport:
    read: ReadResult
    valid: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    # (row, the row it repeats or 0 for one already among the teacher's problems)
    duplicates: list[tuple[int, int]] = field(default_factory=list)
    imported: int = 0
    keep_valid: bool = False

    @property
    def error(self) -> str:
        return self.read.error

    @property
    def row_count(self) -> int:
        return self.read.row_count

    @property
    def nothing_imported_because_of_rejections(self) -> bool:
        return bool(self.rejected) and not self.keep_valid


def _form_reasons(form: ProblemForm) -> list[str]:
    reasons = []
    for name, errors in form.errors.items():
        for error in errors:
            reasons.append(str(error) if name == "__all__" else f"{name}: {error}")
    return reasons


def validate_rows(
    read: ReadResult,
    budget: float = IMPORT_TIME_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[tuple[int, dict[str, Any]]], list[RowProblem]]:
    """The rows the editor's form accepts (cleaned), and the rejected ones with reasons (the
    reader's and the form's, in row order)."""
    valid: list[tuple[int, dict[str, Any]]] = []
    rejected = list(read.rejected)
    deadline = clock() + budget
    for number, row in read.rows:
        if clock() > deadline:
            rejected.append(
                RowProblem(
                    number,
                    ["not checked: checking the file took too long; import it in smaller files"],
                )
            )
            continue
        data = dict(row)
        if not data.get("difficulty", "").strip():
            data["difficulty"] = "2"
        form = ProblemForm(data=data)
        if form.is_valid():
            valid.append((number, form.cleaned_data))
        else:
            rejected.append(RowProblem(number, _form_reasons(form)))
    rejected.sort(key=lambda problem: problem.row)
    return valid, rejected


def _without_duplicates(
    valid: list[tuple[int, dict[str, Any]]], owner
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, int]]]:
    texts = {data["text"] for _, data in valid}
    existing = set(
        Problem.objects.filter(owner=owner, text__in=texts).values_list("text", "final_answer")
    )
    seen: dict[tuple[str, str], int] = {}
    kept, duplicates = [], []
    for number, data in valid:
        key = (data["text"], data["final_answer"])
        if key in existing:
            duplicates.append((number, 0))
        elif key in seen:
            duplicates.append((number, seen[key]))
        else:
            seen[key] = number
            kept.append((number, data))
    return kept, duplicates


def import_problems(
    data: bytes, owner, *, filename: str = "", fmt: str = "auto", keep_valid: bool = False
) -> ImportReport:
    """Read, validate and (when allowed) create the problems of one file for ``owner``."""
    read = read_problem_file(data, filename, fmt)
    report = ImportReport(read=read, keep_valid=keep_valid)
    if read.error:
        return report
    valid, report.rejected = validate_rows(read)
    report.valid, report.duplicates = _without_duplicates(valid, owner)
    if report.nothing_imported_because_of_rejections or not report.valid:
        return report
    problems = [
        Problem(owner=owner, source=Problem.Source.CUSTOM, **cleaned) for _, cleaned in report.valid
    ]
    with transaction.atomic():
        Problem.objects.bulk_create(problems)
    report.imported = len(problems)
    return report
