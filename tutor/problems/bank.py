"""Loading problems into the bank: our starter set and MathDial files. Imports are idempotent:
a problem is keyed by (source, source_id) and updated in place when seen again."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from training.data.mathdial import MathDialRecord, read_mathdial

from .models import Problem

STARTER_BANK = Path(__file__).resolve().parent / "data" / "starter_problems.json"


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated"


def _upsert(rows: Iterable[dict], source: str) -> ImportResult:
    result = ImportResult()
    with transaction.atomic():
        for row in rows:
            source_id = row.pop("source_id")
            _, created = Problem.objects.update_or_create(
                source=source, source_id=source_id, defaults=row
            )
            if created:
                result.created += 1
            else:
                result.updated += 1
    return result


def load_starter_bank(path: Path = STARTER_BANK) -> ImportResult:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return _upsert(rows, Problem.Source.STARTER)


def _title(question: str, limit: int = 60) -> str:
    first = question.split(".")[0].strip()
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def mathdial_problem_fields(record: MathDialRecord) -> dict:
    return {
        "source_id": record.qid,
        "title": _title(record.question),
        "text": record.question,
        "final_answer": record.final_answer,
        "solution": record.solution,
        "skills": ["word problems"],
        "difficulty": 3,
        "metadata": {
            "student_profile": record.student_profile,
            "student_incorrect_solution": record.student_incorrect_solution,
            "teacher_described_confusion": record.teacher_described_confusion,
        },
    }


def import_mathdial(path: str | Path, limit: int | None = None) -> ImportResult:
    """Import problems from a MathDial JSONL file. MathDial has several dialogues per problem;
    the first row of each qid is kept."""
    seen: set[str] = set()
    rows = []
    for record in read_mathdial(path):
        if record.qid in seen:
            continue
        seen.add(record.qid)
        rows.append(mathdial_problem_fields(record))
        if limit is not None and len(rows) >= limit:
            break
    return _upsert(rows, Problem.Source.MATHDIAL)
