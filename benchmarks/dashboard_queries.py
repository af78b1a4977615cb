#!/usr/bin/env python
"""Class dashboard server time and query count on PostgreSQL, as classes grow.

    .venv/bin/python benchmarks/dashboard_queries.py
    .venv/bin/python benchmarks/dashboard_queries.py --students 200 50 --sessions 50 --messages 20

Creates a throwaway database (``--db-url``, default ``tutor_bench`` on the local server), runs
the migrations, and seeds one class per ``--students`` figure: each student has ``--sessions``
tutoring sessions opened from the class's assignments, ``--messages`` messages each (student and
tutor turns, seconds to minutes apart) and one to three answer attempts, spread over 30 days,
with bulk_create in batches. Then, through Django's test client (the full request: middleware,
session, auth, view, JSON), it times each dashboard endpoint ``--reps`` times after a warm-up and
reports the median and p95 in ms, the first request after the cache is cleared ("cold": every
message read, every skill fitted), and the number of SQL queries per request (counted with
``connection.execute_wrapper``): the same for every class size. The database is dropped at the
end unless ``--keep``. Goal: under 200 ms per endpoint for 200 students x 50 sessions x 20 messages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
SKILLS = ["fractions", "ratios", "linear equations", "percentages", "area", "negative numbers"]
ENDPOINTS = [("page", ""), ("summary.json", "summary.json"), ("mastery.json", "mastery.json")]


def recreate_database(url: str, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tutor.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    # Keep one connection for the run (as CONN_MAX_AGE does in production), and keep the
    # captured queries: closing the connection at each request would drop both.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)


class ExplicitTimestamps:
    """bulk_create honours auto_now(_add); seeded rows need their own times."""

    def __enter__(self):
        from tutor.dialogues.models import AnswerAttempt, Message, TutoringSession

        self.fields = [
            field
            for model in (Message, AnswerAttempt, TutoringSession)
            for field in model._meta.concrete_fields
            if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False)
        ]
        self.saved = [(f, f.auto_now, f.auto_now_add) for f in self.fields]
        for field in self.fields:
            field.auto_now = field.auto_now_add = False
        return self

    def __exit__(self, *exc):
        for field, now, now_add in self.saved:
            field.auto_now, field.auto_now_add = now, now_add


def seed_class(tag, n_students, n_sessions, n_messages, teacher, problems, rng, batch=5000):
    from django.utils import timezone

    from tutor.accounts.models import Role, User
    from tutor.classes.models import Assignment, Classroom, Enrollment
    from tutor.dialogues.models import AnswerAttempt, Message, TutoringSession

    now = timezone.now()
    start = now - dt.timedelta(days=30)
    classroom = Classroom.objects.create(name=f"Bench {tag}", teacher=teacher)
    assignments = []
    for i in range(6):
        assignment = Assignment.objects.create(
            classroom=classroom,
            title=f"Week {i + 1}",
            due_at=start + dt.timedelta(days=5 * (i + 1)),
        )
        assignment.problems.set(problems[i * 5 : i * 5 + 5])
        assignments.append(assignment)
    students = User.objects.bulk_create(
        [
            User(username=f"{tag}-s{i:04d}", first_name=f"Student {i}", role=Role.STUDENT)
            for i in range(n_students)
        ],
        batch_size=batch,
    )
    Enrollment.objects.bulk_create(
        [Enrollment(classroom=classroom, student=s) for s in students], batch_size=batch
    )
    ability = {s.pk: rng.uniform(0.2, 0.9) for s in students}
    n_msg = n_att = 0
    with ExplicitTimestamps():
        for chunk_start in range(0, n_students, 20):
            sessions = []
            plans = []
            for student in students[chunk_start : chunk_start + 20]:
                for _ in range(n_sessions):
                    assignment = rng.choice(assignments)
                    problem = rng.choice(problems[:30])
                    begin = start + dt.timedelta(seconds=rng.uniform(0, 29 * 86400))
                    tries = rng.randint(1, 3)
                    outcomes = [rng.random() < ability[student.pk] for _ in range(tries)]
                    solved = any(outcomes)
                    if solved:
                        outcomes = outcomes[: outcomes.index(True) + 1]
                    open_ = not solved and rng.random() < 0.3
                    sessions.append(
                        TutoringSession(
                            student=student,
                            problem=problem,
                            classroom=classroom,
                            assignment=assignment,
                            status="open" if open_ else "closed",
                            outcome="solved"
                            if solved
                            else ("incorrect" if outcomes else "pending"),
                            created_at=begin,
                            updated_at=begin,
                        )
                    )
                    plans.append((begin, outcomes))
            sessions = TutoringSession.objects.bulk_create(sessions, batch_size=batch)
            messages, attempts = [], []
            for session, (begin, outcomes) in zip(sessions, plans, strict=True):
                at = begin
                for m in range(n_messages):
                    at += dt.timedelta(seconds=rng.expovariate(1 / 60))
                    messages.append(
                        Message(
                            session=session,
                            role="student" if m % 2 == 0 else "tutor",
                            text="Seeded message " * 4,
                            created_at=at,
                        )
                    )
                for k, correct in enumerate(outcomes):
                    attempts.append(
                        AnswerAttempt(
                            session=session,
                            answer=str(k),
                            correct=correct,
                            created_at=at + dt.timedelta(seconds=10 * (k + 1)),
                        )
                    )
            Message.objects.bulk_create(messages, batch_size=batch)
            AnswerAttempt.objects.bulk_create(attempts, batch_size=batch)
            n_msg += len(messages)
            n_att += len(attempts)
    return classroom, n_msg, n_att


def measure(client, classroom, reps):
    from django.core.cache import cache
    from django.db import connection

    results = {}
    for label, suffix in ENDPOINTS:
        url = f"/dashboards/classes/{classroom.pk}/{suffix}"
        for _ in range(2):
            assert client.get(url).status_code == 200
        queries = []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = client.get(url)
        assert response.status_code == 200, response.status_code
        timings = []
        for _ in range(reps):
            t0 = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - t0) * 1000)
        timings.sort()
        # Cold: the first request after a restart (empty cache: every message is read and
        # every skill fitted).
        cache.clear()
        t0 = time.perf_counter()
        client.get(url)
        cold_ms = (time.perf_counter() - t0) * 1000
        p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
        results[label] = {
            "median_ms": round(statistics.median(timings), 1),
            "p95_ms": round(p95, 1),
            "cold_ms": round(cold_ms, 1),
            "queries": len(queries),
            "bytes": len(response.content),
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default="postgres://postgres@127.0.0.1:5432/tutor_bench")
    parser.add_argument("--students", type=int, nargs="+", default=[200, 50])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    if not urlsplit(args.db_url).path.lstrip("/").endswith("bench"):
        parser.error("--db-url must name a throwaway database whose name ends in 'bench'")
    recreate_database(args.db_url)
    try:
        setup_django(args.db_url)
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from tutor.accounts.models import Role, User
        from tutor.problems.models import Problem

        t0 = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        rng = random.Random(args.seed)
        teacher = User.objects.create_user("bench-teacher", password="x", role=Role.TEACHER)
        problems = Problem.objects.bulk_create(
            [
                Problem(
                    title=f"Problem {i}",
                    text="...",
                    final_answer="1",
                    solution="...",
                    skills=[SKILLS[i % len(SKILLS)]]
                    + ([SKILLS[(i + 1) % len(SKILLS)]] if i % 4 == 0 else []),
                )
                for i in range(30)
            ]
        )
        classes = []
        for n in args.students:
            classroom, n_msg, n_att = seed_class(
                f"c{n}", n, args.sessions, args.messages, teacher, problems, rng
            )
            classes.append((n, classroom, n_msg, n_att))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"seeded in {time.perf_counter() - t0:.0f} s; PostgreSQL {connection.pg_version}")

        client = Client()
        client.force_login(teacher)
        report = {
            "machine": platform.platform(),
            "python": platform.python_version(),
            "reps": args.reps,
            "classes": [],
        }
        header = f"{'students':>8} {'sessions':>8} {'messages':>8} {'attempts':>8}  "
        header += f"{'endpoint':<13} {'median ms':>9} {'p95 ms':>7} {'cold ms':>7} {'queries':>7}"
        header += f" {'KiB':>5}"
        print(header)
        for n, classroom, n_msg, n_att in classes:
            results = measure(client, classroom, args.reps)
            report["classes"].append(
                {
                    "students": n,
                    "sessions": n * args.sessions,
                    "messages": n_msg,
                    "attempts": n_att,
                    "endpoints": results,
                }
            )
            for label, r in results.items():
                print(
                    f"{n:>8} {n * args.sessions:>8} {n_msg:>8} {n_att:>8}  {label:<13}"
                    f" {r['median_ms']:>9} {r['p95_ms']:>7} {r['cold_ms']:>7} {r['queries']:>7}"
                    f" {r['bytes'] / 1024:>5.0f}"
                )
        counts = {
            label: {c["students"]: c["endpoints"][label]["queries"] for c in report["classes"]}
            for label, _ in ENDPOINTS
        }
        same = all(len(set(by_size.values())) == 1 for by_size in counts.values())
        print(f"query count independent of class size: {'yes' if same else 'NO'} {counts}")
        if args.out:
            args.out.write_text(json.dumps(report, indent=2) + "\n")
        from django.db import connections

        connections.close_all()
    finally:
        if not args.keep:
            recreate_database(args.db_url, drop_only=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
