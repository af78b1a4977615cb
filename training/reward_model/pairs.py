"""Preference pairs for the pedagogy reward model, and their split by problem.

Sources:
- MathDial: in the context of a human teacher's scaffolding turn (move ``focus`` or ``probing``),
  that turn is preferred over a turn that tells: a human ``telling`` turn from the same dialogue
  and a synthetic one built from the worked solution and the final answer.
- MathTutorBench: the human teacher turns in ``dialog_history`` (no move labels; those that
  state the final answer are skipped) preferred over a synthetic telling turn.
- Teachers' turn ratings from the class export (docs/export.md): among rated tutor turns on the
  same problem, the higher rubric average is preferred; a turn that gave the answer away is
  strongly dispreferred (its utility drops by ``GAVE_AWAY_PENALTY`` and its pairs weigh more).
- Students' thumbs up or down on tutor turns (the class export's ``student_ratings``, or the
  retraining dataset's ``student_rating`` records), beside teachers' ratings by this rule:
  a turn a teacher rated is ordered by the teacher alone; among the other turns of a problem,
  one students found helpful is preferred over one they did not, with ``STUDENT_PAIR_WEIGHT``
  (half a teacher pair: one click is a noisier signal than a rubric), and a turn that gave the
  answer away (the automatic leak check, or the answer found in it) is never preferred,
  however helpful students found it: a student's thumbs up rewards being told the answer,
  which is the habit the reward model exists to discourage.
- A retraining dataset (``tutor/retraining/export.py``): its teachers' ``rating`` records (as
  the class export's ratings) and its ``blocked`` records, the reply attempts the answer guard
  stopped at serving time: the reply the student was shown instead is preferred over the
  stopped attempt, in the same context, with ``BLOCKED_PAIR_WEIGHT`` (a leak the platform
  caught is as clear a negative as a teacher's "gave the answer away").

Every pair and rated turn carries a ``problem_key``; :func:`split_by_problem` puts each problem
wholly in train or in held-out, so no problem leaks between them.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from pedagogy.judges import reveals_answer

from ..data.mathdial import MathDialRecord
from ..data.mathtutorbench import MathTutorBenchItem

SCAFFOLDING_MOVES = frozenset({"focus", "probing"})
TELLING_MOVES = frozenset({"telling"})
RUBRIC_FIELDS = ("helpful", "no_answer_reveal", "correct", "encourages_thinking")
GAVE_AWAY_PENALTY = 5.0
GAVE_AWAY_WEIGHT = 2.0
STUDENT_PAIR_WEIGHT = 0.5
BLOCKED_PAIR_WEIGHT = GAVE_AWAY_WEIGHT

History = tuple[tuple[str, str], ...]  # ((speaker, text), ...), speaker "teacher" / "student"


@dataclass(frozen=True)
class Sample:
    """A candidate tutor turn in its context."""

    problem: str
    history: History
    turn: str


@dataclass(frozen=True)
class PreferencePair:
    chosen: Sample
    rejected: Sample
    problem_key: str
    # "mathdial_telling", "synthetic_telling", "ratings", "ratings_gave_away", "student_ratings",
    # "blocked"
    kind: str
    weight: float = 1.0


@dataclass(frozen=True)
class RatedTurn:
    """A rated tutor turn from the export: its utility (rubric average less the give-away
    penalty) is the target for a rank correlation on held-out problems."""

    sample: Sample
    problem_key: str
    rubric: float
    gave_away: float  # fraction of raters who said it gave the answer away
    utility: float


@dataclass(frozen=True)
class StudentRatedTurn:
    """A tutor turn students rated and no teacher did: the fraction of thumbs up, and whether
    it gave the answer away (then it is never the preferred side of a pair)."""

    sample: Sample
    problem_key: str
    helpful: float
    votes: int
    leaked: bool


def problem_key(problem: str) -> str:
    """A stable key for a problem: the same text (up to case and spacing) gets the same key."""
    normal = re.sub(r"\s+", " ", problem).strip().lower()
    return hashlib.sha1(normal.encode("utf-8")).hexdigest()[:16]


def _history(turns: Iterable, limit: int | None) -> History:
    items = [(t.speaker, t.text) for t in turns if t.text]
    return tuple(items[-limit:] if limit else items)


_CALCULATOR = re.compile(r"<<[^<>]*>>")


def _solution_steps(solution: str) -> list[str]:
    """Lines of a worked solution, without GSM8K calculator marks (``<<12+3=15>>``) or the
    Socratic sub-question before `` ** ``."""
    steps = []
    for line in solution.splitlines():
        line = _CALCULATOR.sub("", line).strip()
        if " ** " in line:
            line = line.split(" ** ", 1)[1].strip()
        if line:
            steps.append(line)
    return steps


_TELLING_TEMPLATES = (
    "The answer is {answer}. {solution}",
    "{solution} So the answer is {answer}.",
    "You should have gotten {answer}. Here is how: {solution}",
    "No, that's not right. {last} The correct answer is {answer}.",
    "Let me just show you. {solution} That gives {answer}.",
    "It's {answer}.",
    "The final answer is {answer}, because {last_lower}",
    "Actually {first} Then {last_lower} So it is {answer}.",
    "Just do this: {solution} The result is {answer}.",
    "You made a mistake. The right answer is {answer}. {last}",
)


def synthetic_telling(solution: str, final_answer: str, rng: random.Random) -> str:
    """A turn that hands over the answer with (part of) the worked solution."""
    steps = _solution_steps(solution) or [f"It comes to {final_answer}."]
    template = rng.choice(_TELLING_TEMPLATES)
    last = steps[-1].rstrip(".") + "."
    text = template.format(
        answer=final_answer,
        solution=" ".join(s.rstrip(".") + "." for s in steps),
        first=steps[0].rstrip(".") + ".",
        last=last,
        last_lower=last[:1].lower() + last[1:],
    )
    return re.sub(r"\s+", " ", text).strip()


def _rng(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha1(repr((seed, *parts)).encode("utf-8")).hexdigest()
    return random.Random(int(digest[:16], 16))


def _leaks(turn: str, final_answer: str, problem: str, student_texts: Sequence[str]) -> bool:
    try:
        return reveals_answer(turn, final_answer, problem, student_texts)
    except Exception:  # a checker hiccup on odd text must not stop pair building
        return False


def mathdial_pairs(
    records: Iterable[MathDialRecord],
    *,
    history_turns: int | None = 6,
    synthetic: bool = True,
    human_telling: bool = True,
    seed: int = 0,
) -> list[PreferencePair]:
    """Scaffolding turns preferred over telling turns, in the scaffolding turn's context."""
    pairs = []
    for record in records:
        key = problem_key(record.question)
        telling = [
            t.text for t in record.turns if t.speaker == "teacher" and t.move in TELLING_MOVES
        ]
        for index, turn in enumerate(record.turns):
            if turn.speaker != "teacher" or turn.move not in SCAFFOLDING_MOVES or not turn.text:
                continue
            before = record.turns[:index]
            students = [t.text for t in before if t.speaker == "student"]
            if _leaks(turn.text, record.final_answer, record.question, students):
                continue  # a "scaffolding" turn that states the answer is no clean positive
            chosen = Sample(record.question, _history(before, history_turns), turn.text)
            rng = _rng(seed, key, record.qid, index)
            if human_telling and telling:
                rejected = Sample(chosen.problem, chosen.history, rng.choice(telling))
                pairs.append(PreferencePair(chosen, rejected, key, "mathdial_telling"))
            if synthetic:
                text = synthetic_telling(record.solution, record.final_answer, rng)
                rejected = Sample(chosen.problem, chosen.history, text)
                pairs.append(PreferencePair(chosen, rejected, key, "synthetic_telling"))
    return pairs


def mathtutorbench_pairs(
    items: Iterable[MathTutorBenchItem], *, history_turns: int | None = 6, seed: int = 0
) -> list[PreferencePair]:
    """Human teacher turns of the dialogue histories over synthetic telling turns."""
    pairs = []
    for item in items:
        if not item.has_problem:
            continue  # Bridge items: no problem text or answer to build a telling turn from
        key = problem_key(item.problem)
        solution = "\n".join(_solution_steps(item.reference_solution)[:-1])
        for index, turn in enumerate(item.history):
            if turn.speaker != "teacher" or index == 0 or not turn.text:
                continue  # the opening "tell me your solution" says little
            before = item.history[:index]
            students = [t.text for t in before if t.speaker == "student"]
            if _leaks(turn.text, item.final_answer, item.problem, students):
                continue
            chosen = Sample(item.problem, _history(before, history_turns), turn.text)
            text = synthetic_telling(solution, item.final_answer, _rng(seed, key, index))
            rejected = Sample(item.problem, chosen.history, text)
            pairs.append(PreferencePair(chosen, rejected, key, "synthetic_telling"))
    return pairs


def read_export(paths: Iterable[str | Path]) -> list[dict]:
    """Sessions from class export files (JSON Lines, docs/export.md)."""
    sessions = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    sessions.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from exc
    return sessions


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def rated_turns(sessions: Iterable[dict], *, history_turns: int | None = 6) -> list[RatedTurn]:
    """Every rated tutor turn of the exported sessions, with its utility."""
    rated = []
    for session in sessions:
        problem = session.get("problem") or {}
        text = str(problem.get("text") or "").strip()
        if not text:
            continue
        key = problem_key(text)
        history: list[tuple[str, str]] = []
        for message in session.get("messages") or []:
            speaker = "teacher" if message.get("role") == "tutor" else "student"
            body = str(message.get("text") or "").strip()
            ratings = message.get("ratings") or []
            if speaker == "teacher" and body and ratings:
                rubric = _mean(
                    m
                    for m in (
                        _mean(float(r[f]) for f in RUBRIC_FIELDS if r.get(f) is not None)
                        for r in ratings
                    )
                    if m is not None
                )
                gave_away = sum(bool(r.get("gave_away_answer")) for r in ratings) / len(ratings)
                rubric = 3.0 if rubric is None else rubric
                window = tuple(history[-history_turns:] if history_turns else history)
                rated.append(
                    RatedTurn(
                        sample=Sample(text, window, body),
                        problem_key=key,
                        rubric=rubric,
                        gave_away=gave_away,
                        utility=rubric - GAVE_AWAY_PENALTY * gave_away,
                    )
                )
            if body:
                history.append((speaker, body))
    return rated


def ratings_pairs(
    rated: Iterable[RatedTurn],
    *,
    min_margin: float = 0.5,
    max_pairs_per_problem: int = 50,
    seed: int = 0,
) -> list[PreferencePair]:
    """Pairs of rated turns on the same problem whose utilities differ by ``min_margin``."""
    by_problem: dict[str, list[RatedTurn]] = defaultdict(list)
    for turn in rated:
        by_problem[turn.problem_key].append(turn)
    pairs = []
    for key in sorted(by_problem):
        group = []
        for a, b in combinations(by_problem[key], 2):
            if abs(a.utility - b.utility) < min_margin:
                continue
            good, bad = (a, b) if a.utility > b.utility else (b, a)
            gave_away = bad.gave_away >= 0.5 > good.gave_away
            group.append(
                PreferencePair(
                    good.sample,
                    bad.sample,
                    key,
                    "ratings_gave_away" if gave_away else "ratings",
                    GAVE_AWAY_WEIGHT if gave_away else 1.0,
                )
            )
        if len(group) > max_pairs_per_problem:
            group = _rng(seed, key).sample(group, max_pairs_per_problem)
        pairs.extend(group)
    return pairs


def _votes(ratings: object) -> list[bool]:
    """The thumbs of a message's student ratings (malformed entries skipped)."""
    if not isinstance(ratings, list):
        return []
    return [r["helpful"] for r in ratings if isinstance(r, dict) and type(r.get("helpful")) is bool]


def student_rated_turns(
    sessions: Iterable[dict], *, history_turns: int | None = 6
) -> list[StudentRatedTurn]:
    """Tutor turns of the exported sessions that students rated and no teacher did. A turn
    counts as leaked when the automatic check said so or, the problem's answer being known,
    when it states the answer before the student did."""
    turns = []
    for session in sessions:
        problem = session.get("problem") or {}
        text = str(problem.get("text") or "").strip()
        if not text:
            continue
        final_answer = str(problem.get("final_answer") or "").strip()
        key = problem_key(text)
        history: list[tuple[str, str]] = []
        for message in session.get("messages") or []:
            speaker = "teacher" if message.get("role") == "tutor" else "student"
            body = str(message.get("text") or "").strip()
            votes = _votes(message.get("student_ratings"))
            if speaker == "teacher" and body and votes and not message.get("ratings"):
                helpful = sum(votes) / len(votes)
                leaked = bool(message.get("leaked_answer"))
                if not leaked and final_answer and helpful > 0.5:
                    students = [t for s, t in history if s == "student"]
                    leaked = _leaks(body, final_answer, text, students)
                window = tuple(history[-history_turns:] if history_turns else history)
                turns.append(
                    StudentRatedTurn(Sample(text, window, body), key, helpful, len(votes), leaked)
                )
            if body:
                history.append((speaker, body))
    return turns


def _speaker_history(items: object, history_turns: int | None) -> History:
    pairs = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("text") or "").strip():
            speaker = "teacher" if item.get("role") == "tutor" else "student"
            pairs.append((speaker, str(item["text"]).strip()))
    return tuple(pairs[-history_turns:] if history_turns else pairs)


def dataset_student_rated_turns(
    records: Iterable[dict], *, history_turns: int | None = 6
) -> list[StudentRatedTurn]:
    """The same from a retraining dataset (``tutor/retraining/export.py``): its
    ``student_rating`` records, grouped by dialogue and turn; turns with a teacher ``rating``
    record are left to the teachers."""
    teacher_rated = set()
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        where = (record.get("dialogue"), record.get("turn"))
        if record.get("kind") == "rating":
            teacher_rated.add(where)
        elif record.get("kind") == "student_rating":
            grouped[where].append(record)
    turns = []
    for where, group in grouped.items():
        first = group[0]
        text = str(first.get("problem_text") or "").strip()
        body = str(first.get("tutor_text") or "").strip()
        votes = _votes(group)
        if where in teacher_rated or not text or not body or not votes:
            continue
        turns.append(
            StudentRatedTurn(
                sample=Sample(text, _speaker_history(first.get("history"), history_turns), body),
                problem_key=problem_key(text),
                helpful=sum(votes) / len(votes),
                votes=len(votes),
                leaked=any(bool(r.get("leaked_answer")) for r in group),
            )
        )
    return turns


def _rubric(record: dict) -> float | None:
    return _mean(
        float(record[f])
        for f in RUBRIC_FIELDS
        if isinstance(record.get(f), (int, float)) and not isinstance(record.get(f), bool)
    )


def dataset_rated_turns(
    records: Iterable[dict], *, history_turns: int | None = 6
) -> list[RatedTurn]:
    """The teachers' rated turns of a retraining dataset: its ``rating`` records grouped by
    dialogue and turn, with the utility :func:`rated_turns` gives the class export's."""
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("kind") == "rating":
            grouped[(record.get("dialogue"), record.get("turn"))].append(record)
    rated = []
    for group in grouped.values():
        first = group[0]
        text = str(first.get("problem_text") or "").strip()
        body = str(first.get("tutor_text") or "").strip()
        if not text or not body:
            continue
        rubric = _mean(m for m in (_rubric(r) for r in group) if m is not None)
        rubric = 3.0 if rubric is None else rubric
        gave_away = sum(bool(r.get("gave_away_answer")) for r in group) / len(group)
        rated.append(
            RatedTurn(
                sample=Sample(text, _speaker_history(first.get("history"), history_turns), body),
                problem_key=problem_key(text),
                rubric=rubric,
                gave_away=gave_away,
                utility=rubric - GAVE_AWAY_PENALTY * gave_away,
            )
        )
    return rated


def blocked_pairs(
    records: Iterable[dict],
    *,
    history_turns: int | None = 6,
    max_pairs_per_problem: int = 50,
    seed: int = 0,
) -> list[PreferencePair]:
    """The reply shown over each attempt the answer guard stopped, in the same context
    (``blocked`` records that carry the shown reply; older datasets without it give none)."""
    by_problem: dict[str, list[PreferencePair]] = defaultdict(list)
    for record in records:
        if record.get("kind") != "blocked":
            continue
        text = str(record.get("problem_text") or "").strip()
        stopped = str(record.get("tutor_text") or "").strip()
        shown = str(record.get("shown_text") or "").strip()
        if not text or not stopped or not shown or shown == stopped:
            continue
        history = _speaker_history(record.get("history"), history_turns)
        key = problem_key(text)
        by_problem[key].append(
            PreferencePair(
                Sample(text, history, shown),
                Sample(text, history, stopped),
                key,
                "blocked",
                BLOCKED_PAIR_WEIGHT,
            )
        )
    pairs = []
    for key in sorted(by_problem):
        group = by_problem[key]
        if len(group) > max_pairs_per_problem:
            group = _rng(seed, key, "blocked").sample(group, max_pairs_per_problem)
        pairs.extend(group)
    return pairs


def student_ratings_pairs(
    turns: Iterable[StudentRatedTurn], *, max_pairs_per_problem: int = 50, seed: int = 0
) -> list[PreferencePair]:
    """On each problem, every turn students found helpful (more thumbs up than down) and that
    did not give the answer away, over every turn they found unhelpful; weight
    ``STUDENT_PAIR_WEIGHT``."""
    by_problem: dict[str, list[StudentRatedTurn]] = defaultdict(list)
    for turn in turns:
        by_problem[turn.problem_key].append(turn)
    pairs = []
    for key in sorted(by_problem):
        good = [t for t in by_problem[key] if t.helpful > 0.5 and not t.leaked]
        bad = [t for t in by_problem[key] if t.helpful < 0.5]
        group = [
            PreferencePair(g.sample, b.sample, key, "student_ratings", STUDENT_PAIR_WEIGHT)
            for g in good
            for b in bad
            if g.sample != b.sample
        ]
        if len(group) > max_pairs_per_problem:
            group = _rng(seed, key, "students").sample(group, max_pairs_per_problem)
        pairs.extend(group)
    return pairs


def split_keys(keys: Iterable[str], held_out_fraction: float = 0.2, seed: int = 0) -> set[str]:
    """The held-out problem keys: a seeded shuffle of the distinct keys, the first fraction."""
    unique = sorted(set(keys))
    random.Random(seed).shuffle(unique)
    count = round(len(unique) * held_out_fraction)
    if held_out_fraction > 0 and len(unique) > 1:
        count = min(max(count, 1), len(unique) - 1)
    return set(unique[:count])


def split_by_problem(
    pairs: Sequence[PreferencePair], held_out_fraction: float = 0.2, seed: int = 0
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held_out): every problem's pairs fall wholly on one side."""
    held = split_keys((p.problem_key for p in pairs), held_out_fraction, seed)
    train = [p for p in pairs if p.problem_key not in held]
    return train, [p for p in pairs if p.problem_key in held]


def cap(items: Sequence, limit: int | None, seed: int = 0) -> list:
    """At most ``limit`` items, a seeded sample that keeps their order."""
    if not limit or len(items) <= limit:
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]
