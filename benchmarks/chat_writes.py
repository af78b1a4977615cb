#!/usr/bin/env python
"""Chat turns per second that PostgreSQL takes through the platform's own write path.

    .venv/bin/python benchmarks/chat_writes.py
    .venv/bin/python benchmarks/chat_writes.py --threads 1 4 8 16 --seconds 10

One chat turn is what the socket does around a reply, minus the model: the student's message
stored (``tutor.dialogues.services.accept_student_message``: the store, moderation, the history
read and the prompt built) and the tutor's reply stored (``store_tutor_reply``, which also
queues the post-turn check on the Redis broker after commit). ``--threads`` workers, each with
its own database connection as each ASGI worker's database threads have, run turns on sessions
of their own for ``--seconds``; the run reports turns per second, SQL statements per second
(writes: INSERT, UPDATE, DELETE) and the turn's latency (median, p95). docs/scaling.md builds
its capacity model from these figures.

It creates a throwaway database (``--db-url``, default ``tutor_bench_writes`` on the local
server) and uses a Redis database of its own (``--redis-url``, default db 11), whose queues it
purges at the end; the database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.dashboard_queries import recreate_database  # noqa: E402

STUDENT_TEXT = "I think I should subtract 7 from both sides first, so 3x = 18?"
TUTOR_TEXT = (
    "Good start: subtracting 7 from both sides keeps the equation balanced. What could you do "
    "next to get $x$ on its own?"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default="postgres://postgres@127.0.0.1:5432/tutor_bench_writes")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=8.0, help="per thread count")
    parser.add_argument("--history", type=int, default=10, help="messages already in a session")
    parser.add_argument("--json-out", help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    return parser.parse_args(argv)


def setup_django(db_url: str, redis_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["CHANNELS_PREFIX"] = "tutor-bench-writes"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tutor.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


class StatementCounter:
    """Counts a thread's SQL statements, by whether they write."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0

    def __call__(self, execute, sql, params, many, context):
        verb = sql.lstrip().split(" ", 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            self.writes += 1
        elif verb == "SELECT":
            self.reads += 1
        return execute(sql, params, many, context)


def seed(threads: int, history: int) -> list[int]:
    """One student and session per thread, each with ``history`` earlier messages."""
    from tutor.accounts.models import Role, User
    from tutor.dialogues.models import Message, TutoringSession
    from tutor.problems.models import Problem

    problem = Problem.objects.create(
        title="Bench", text="Solve for $x$: $3x + 7 = 25$.", final_answer="6"
    )
    sessions = []
    for index in range(threads):
        student = User.objects.create(username=f"bench-w{threads}-{index}", role=Role.STUDENT)
        session = TutoringSession.objects.create(student=student, problem=problem)
        Message.objects.bulk_create(
            Message(session=session, role=("student", "tutor")[i % 2], text=TUTOR_TEXT)
            for i in range(history)
        )
        sessions.append(session.pk)
    return sessions


def worker(session_id: int, stop: float, out: dict) -> None:
    from django.db import connection

    from tutor.dialogues import services
    from tutor.dialogues.models import TutoringSession

    counter = StatementCounter()
    latencies: list[float] = []
    session = TutoringSession.objects.get(pk=session_id)
    with connection.execute_wrapper(counter):
        while time.perf_counter() < stop:
            started = time.perf_counter()
            turn = services.accept_student_message(session, STUDENT_TEXT, uuid.uuid4())
            assert turn.message is not None and turn.prompt
            services.store_tutor_reply(
                session,
                services.TutorReply(
                    text=TUTOR_TEXT,
                    thinking="",
                    partial=False,
                    finish_reason="stop",
                    model_name="bench",
                    completion_tokens=32,
                ),
            )
            latencies.append(time.perf_counter() - started)
    connection.close()
    out.update(latencies=latencies, reads=counter.reads, writes=counter.writes)


def run(threads: int, seconds: float, history: int) -> dict:
    sessions = seed(threads, history)
    results: list[dict] = [{} for _ in sessions]
    stop = time.perf_counter() + seconds
    pool = [
        threading.Thread(target=worker, args=(s, stop, r))
        for s, r in zip(sessions, results, strict=True)
    ]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r["latencies"])
    turns = len(latencies)
    writes = sum(r["writes"] for r in results)
    reads = sum(r["reads"] for r in results)
    return {
        "threads": threads,
        "seconds": wall,
        "turns": turns,
        "turns_per_s": turns / wall,
        "writes_per_s": writes / wall,
        "reads_per_s": reads / wall,
        "writes_per_turn": writes / turns if turns else None,
        "turn_ms_median": 1000 * statistics.median(latencies) if latencies else None,
        "turn_ms_p95": 1000 * latencies[int(0.95 * (turns - 1))] if latencies else None,
    }


def purge_queues() -> None:
    from tutor.celery import app

    with app.connection_for_write() as connection:
        for queue in ("default", "training", app.conf.task_default_queue):
            try:
                connection.default_channel.queue_purge(queue)
            except Exception:  # a queue never declared
                pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    recreate_database(args.db_url)
    setup_django(args.db_url, args.redis_url)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    rows = []
    try:
        print(
            f"{'threads':>7} {'turns/s':>9} {'writes/s':>9} {'reads/s':>9} "
            f"{'writes/turn':>11} {'median ms':>10} {'p95 ms':>8}"
        )
        for threads in args.threads:
            row = run(threads, args.seconds, args.history)
            rows.append(row)
            print(
                f"{threads:>7} {row['turns_per_s']:>9.1f} {row['writes_per_s']:>9.1f} "
                f"{row['reads_per_s']:>9.1f} {row['writes_per_turn']:>11.1f} "
                f"{row['turn_ms_median']:>10.1f} {row['turn_ms_p95']:>8.1f}",
                flush=True,
            )
    finally:
        purge_queues()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(args.db_url, drop_only=True)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
