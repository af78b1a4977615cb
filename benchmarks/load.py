#!/usr/bin/env python
"""Load test of a production-shaped deployment (``scripts/deploy_local.sh``): many idle chat
sockets held open while some students chat, optionally beside hostile clients.

    .venv/bin/python benchmarks/load.py --start --connected 10000 --chatting 100
    .venv/bin/python benchmarks/load.py --url http://127.0.0.1:8400 --connected 2000 \\
        --chatting 50 --hostile 5 --compare-hostile --seconds 600

Loopback only, bounded in count (``--connected``, ``--chatting``, ``--hostile``) and in time
(``--seconds``: a hard cap on the whole run, the deployment's start included).

1. Fixtures (``benchmarks/_fixtures.py setup`` with the deployment's ``$DATABASE_URL``):
   one student per chatting or hostile client, and tutoring sessions for every socket (the
   idle sockets are further tabs of the same students, each on a session of its own).
2. Every student logs in through the login form (``chat_latency.login``).
3. Memory: VmRSS of uvicorn's worker processes (the children of the process listening on the
   port) before and after opening the idle sockets, in batches (``--batch``), with progress.
4. Chatting: ``--chatting`` sockets send one short message each at the same moment and wait
   for ``reply.end``. TTFT: from the send to the first ``reply.delta``. With ``--hostile K``, K
   more students flood messages and costly answers (``COSTLY_ANSWER``, one that passes the
   limits checked before parsing, so each runs a checking worker to its time limit) during the
   phase, reconnecting every half second when the flood guard closes them;
   ``--compare-hostile`` runs three phases on fresh sessions, without them, with them, and
   without them again, and prints the ratio of the bystanders' p95 TTFT with them to the mean
   of the two phases without (and to each, so that a drift over the run shows).
5. Lost messages, from the database: every acknowledged student message stored exactly once
   (by ``client_id``), none stored that was refused, every completed reply stored exactly once,
   and no tutor message that no client saw end.

The reply length is the server's ``TUTOR_MAX_REPLY_TOKENS`` (``--start`` passes
``--max-reply-tokens`` to the deployment). Students, sessions and messages are deleted at the
end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chat_latency import (
    _ws_connect_kwargs,
    login,
    percentile,
    run_fixtures,
)
from inference.launcher import http_status

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_SCRIPT = REPO_ROOT / "scripts" / "deploy_local.sh"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tutor_load"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/6"
MESSAGE = "How do I start?"
HOSTILE_MESSAGE = "Just tell me the answer now. " * 8
COSTLY_ANSWER = "(10^10)^(10^10)"
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {text}", flush=True)


def fmt(value: float | None, unit: str = "ms") -> str:
    return "-" if value is None else f"{value:.0f} {unit}"


# ---- limits and processes ----------------------------------------------------------------------


def raise_fd_limit(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, need + 1024)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def web_worker_pids(port: int) -> list[int]:
    """uvicorn's worker processes: the spawned children of ``uvicorn ... --port PORT``
    (not its resource tracker, nor the workers' own answer-checking processes)."""
    workers: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        command = _cmdline(int(entry.name))
        if "uvicorn" not in command or not re.search(rf"--port {port}( |$)", command):
            continue
        children = [
            c
            for c in _children(int(entry.name))
            if "resource_tracker" not in _cmdline(c) and "python" in _cmdline(c)
        ]
        workers += children or [int(entry.name)]  # --workers 1: the server itself
    return sorted(set(workers))


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Deployment:
    """``scripts/deploy_local.sh`` in a session of its own; SIGTERM stops all it started."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, deadline: float) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["bash", str(DEPLOY_SCRIPT)],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        say(f"starting the deployment (scripts/deploy_local.sh, output in {self.log})")
        while True:
            text = self.log.read_text(errors="replace")
            if "\nURL http" in text:
                say(f"deployment ready at {self.url}")
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the deployment did not start:\n{text[-3000:]}")
            time.sleep(1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)  # the script's trap stops its children
            try:
                process.wait(45)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        say("deployment stopped")


# ---- clients -----------------------------------------------------------------------------------


@dataclass
class Chat:
    session_id: int
    client_id: str = ""
    ttft_ms: float | None = None
    end_ms: float | None = None
    acked: bool = False
    reply_ids: list[int] = field(default_factory=list)
    partial: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class Hostile:
    sent_messages: int = 0
    sent_answers: int = 0
    acked: list[str] = field(default_factory=list)  # client_ids stored
    refused: list[str] = field(default_factory=list)  # client_ids answered with an error
    errors: dict[str, int] = field(default_factory=dict)
    replies: list[int] = field(default_factory=list)  # completed tutor messages
    sessions: list[int] = field(default_factory=list)
    closed: int = 0  # sockets the server closed on them (flooding)
    reconnects: int = 0  # sockets reopened after that
    refused_connects: int = 0  # reopening refused (the cool-down)


class Sockets:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.ws_base = base_url.replace("http://", "ws://")
        self.kwargs = _ws_connect_kwargs()
        self.kwargs["open_timeout"] = 120
        self.connect_errors: dict[str, int] = {}

    async def open(self, session_id: int, cookie: str):
        from websockets.asyncio.client import connect

        try:
            ws = await connect(
                f"{self.ws_base}/ws/sessions/{session_id}/",
                origin=self.base_url,
                additional_headers=[("Cookie", f"sessionid={cookie}")],
                **self.kwargs,
            )
            first = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if first.get("type") != "session":
                await ws.close()
                raise RuntimeError(f"frame {first.get('type')}:{first.get('code')}")
            return ws
        except Exception as exc:  # every failure is counted
            key = f"{type(exc).__name__}: {str(exc)[:80]}"
            self.connect_errors[key] = self.connect_errors.get(key, 0) + 1
            return None

    async def open_many(self, pairs: list[tuple[int, str]], batch: int, label: str, deadline):
        sockets = []
        for start in range(0, len(pairs), batch):
            if time.monotonic() > deadline:
                say(f"{label}: time is up after {len(sockets)} of {len(pairs)}")
                break
            chunk = pairs[start : start + batch]
            sockets += await asyncio.gather(*(self.open(s, c) for s, c in chunk))
            opened = sum(1 for ws in sockets if ws is not None)
            say(
                f"{label}: {opened}/{len(pairs)} open, "
                f"{len(sockets) - opened} failed, fds {len(os.listdir('/proc/self/fd'))}"
                + (f" {self.connect_errors}" if opened < len(sockets) else "")
            )
        return sockets


async def chat_once(ws, chat: Chat, go: asyncio.Event, message: str) -> Chat:
    await go.wait()
    chat.client_id = str(uuid.uuid4())
    t0 = time.perf_counter()
    await ws.send(json.dumps({"type": "message", "text": message, "client_id": chat.client_id}))
    while True:
        frame = json.loads(await ws.recv())
        ms = (time.perf_counter() - t0) * 1000
        kind = frame.get("type")
        if kind == "message":
            chat.acked = True
        elif kind == "reply.delta" and chat.ttft_ms is None:
            chat.ttft_ms = ms
        elif kind == "error":
            chat.errors.append(frame.get("code", "error"))
            if not chat.acked:  # refused before a reply began: nothing more comes
                return chat
        elif kind == "reply.end":
            chat.end_ms = ms
            stored = frame.get("message") or {}
            if stored.get("id") is not None:
                chat.reply_ids.append(stored["id"])
            chat.partial = bool(stored.get("partial"))
            return chat


async def flood(ws, stats: Hostile, stop: asyncio.Event) -> None:
    """Sends messages and costly answers as fast as the socket takes them, reading all that
    comes back, until ``stop`` or until the server closes the socket."""

    async def reader() -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    stats.acked.append(frame["message"].get("client_id"))
                elif kind == "error":
                    code = frame.get("code", "error")
                    stats.errors[code] = stats.errors.get(code, 0) + 1
                    if frame.get("client_id"):
                        stats.refused.append(frame["client_id"])
                elif kind == "reply.end":
                    stored = frame.get("message") or {}
                    if stored.get("id") is not None and not stored.get("partial"):
                        stats.replies.append(stored["id"])

    task = asyncio.create_task(reader())
    try:
        while not stop.is_set() and not task.done():
            client_id = str(uuid.uuid4())
            await ws.send(
                json.dumps({"type": "message", "text": HOSTILE_MESSAGE, "client_id": client_id})
            )
            stats.sent_messages += 1
            await ws.send(json.dumps({"type": "answer", "answer": COSTLY_ANSWER}))
            stats.sent_answers += 1
            await asyncio.sleep(0.05)
    except Exception:  # the server closed the socket
        pass
    finally:
        await asyncio.sleep(1 if stop.is_set() else 0.1)  # the last answers come back
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def hostile_client(ws, stats: Hostile, stop: asyncio.Event, reopen) -> None:
    """Floods on ``ws``; when the server closes it (the flood guard), reopens a socket on the
    same session with the same login (``reopen()``, None when refused) every half second, and
    floods again, until ``stop``."""
    while not stop.is_set():
        if ws is None:
            ws = await reopen()
            if ws is None:
                stats.refused_connects += 1
                await asyncio.sleep(0.5)
                continue
            stats.reconnects += 1
        await flood(ws, stats, stop)
        if not stop.is_set():
            stats.closed += 1
            ws = None


async def chat_phase(
    label: str,
    sockets: list,
    sessions: list[int],
    hostile_sockets: list,
    hostile: Hostile | None,
    deadline: float,
    reopeners: list | None = None,
) -> tuple[list[Chat], float]:
    chats = [Chat(session_id=s) for s in sessions]
    go, stop = asyncio.Event(), asyncio.Event()
    pairs = [(ws, c) for ws, c in zip(sockets, chats, strict=True) if ws is not None]
    for ws, chat in zip(sockets, chats, strict=True):
        if ws is None:
            chat.errors.append("connect_failed")
    tasks = [asyncio.create_task(chat_once(ws, c, go, MESSAGE)) for ws, c in pairs]
    floods = [
        asyncio.create_task(hostile_client(ws, hostile, stop, reopen))
        for ws, reopen in zip(hostile_sockets, reopeners or [], strict=False)
        if ws is not None and hostile is not None
    ]
    if floods:
        say(f"{label}: {len(floods)} hostile clients flooding")
        await asyncio.sleep(2)  # the flood is on before the bystanders send
    say(f"{label}: {len(tasks)} students send at once")
    started = time.perf_counter()
    go.set()
    if not tasks:
        raise RuntimeError(f"{label}: no socket could be opened to chat on")
    _done, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
    wall = time.perf_counter() - started
    for task in pending:
        task.cancel()
    for _ws, chat in pairs:
        if chat.end_ms is None and not chat.errors:
            chat.errors.append("no_reply_in_time")
    stop.set()
    await asyncio.gather(*floods, return_exceptions=True)
    await asyncio.gather(*pending, return_exceptions=True)
    return chats, wall


# ---- the database check ------------------------------------------------------------------------


def check_database(database_url: str, sessions: list[int], chats: list[Chat], hostile: Hostile):
    """Lost or doubled messages, from the database itself."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select id, session_id, role, client_id, partial from dialogues_message "
            "where session_id = any(%s)",
            (sessions,),
        ).fetchall()
    student: dict[str, int] = {}
    tutor_ids: dict[int, int] = {}
    for pk, _session, role, client_id, _partial in rows:
        if role == "student" and client_id is not None:
            student[str(client_id)] = student.get(str(client_id), 0) + 1
        elif role == "tutor":
            tutor_ids[pk] = tutor_ids.get(pk, 0) + 1
    acked = [c.client_id for c in chats if c.acked] + [c for c in hostile.acked if c]
    refused = [c.client_id for c in chats if not c.acked and c.client_id] + hostile.refused
    completed = [i for c in chats if not c.partial for i in c.reply_ids] + hostile.replies
    seen_replies = {i for c in chats for i in c.reply_ids} | set(hostile.replies)
    return {
        "student_acked": len(acked),
        "student_lost": sum(1 for c in acked if student.get(c, 0) == 0),
        "student_doubled": sum(1 for c in acked if student.get(c, 0) > 1),
        "refused_but_stored": sum(1 for c in refused if student.get(c, 0) > 0),
        "replies_completed": len(completed),
        "replies_lost": sum(1 for i in completed if tutor_ids.get(i, 0) == 0),
        "tutor_rows_no_client_saw_end": sum(1 for i in tutor_ids if i not in seen_replies),
    }


# ---- main --------------------------------------------------------------------------------------


def ttft_summary(chats: list[Chat]) -> dict:
    values = [c.ttft_ms for c in chats if c.ttft_ms is not None]
    return {
        "replies": sum(1 for c in chats if c.end_ms is not None and not c.partial),
        "errors": sum(1 for c in chats if c.errors),
        "error_codes": sorted({e for c in chats for e in c.errors}),
        "ttft_p50": percentile(values, 0.5),
        "ttft_p95": percentile(values, 0.95),
        "ttft_p99": percentile(values, 0.99),
        "end_p50": percentile([c.end_ms for c in chats if c.end_ms is not None], 0.5),
    }


def print_phase(label: str, summary: dict, wall: float) -> None:
    say(
        f"{label}: {summary['replies']} replies in {wall:.1f} s, {summary['errors']} with errors "
        f"{summary['error_codes'] or ''}; TTFT median {fmt(summary['ttft_p50'])}, p95 "
        f"{fmt(summary['ttft_p95'])}, p99 {fmt(summary['ttft_p99'])}; reply.end median "
        f"{fmt(summary['end_p50'])}"
    )


async def run(args, env: dict[str, str], base_url: str, deadline: float, result: dict) -> None:
    port = urllib.parse.urlsplit(base_url).port or 80
    phases = 3 if args.compare_hostile else 1
    chat_count = args.chatting * phases
    idle_count = max(0, args.connected - chat_count - args.hostile - 1)  # 1: warm-up
    students = max(1, args.chatting + args.hostile)
    password = secrets.token_urlsafe(12)
    prefix = f"load{secrets.token_hex(3)}_"
    result["prefix"] = prefix

    # _fixtures.py gives the i-th session of a batch to the i-th student: the hostile clients
    # use the last K sessions of their batch (students of their own: rates are per student).
    batches = [{"key": "warm", "size": 1}]
    batches += [{"key": f"chat{p}", "size": args.chatting} for p in range(phases)]
    batches += [{"key": "hostile", "size": students}] if args.hostile else []
    idle_batches = []
    left = idle_count
    while left > 0:
        idle_batches.append({"key": f"idle{len(idle_batches)}", "size": min(students, left)})
        left -= idle_batches[-1]["size"]
    say(f"fixtures: {students} students, {args.connected} sockets")
    fixtures = await asyncio.to_thread(
        run_fixtures,
        "setup",
        {
            "prefix": prefix,
            "students": students,
            "password": password,
            "batches": batches + idle_batches,
            "message": MESSAGE,
            "model_name": env.get("TUTOR_MODEL_NAME", "smollm2-135m-instruct"),
        },
        env,
    )
    usernames = fixtures["usernames"]
    sessions = fixtures["sessions"]
    result["all_sessions"] = [s for ids in sessions.values() for s in ids]

    say(f"logging in {len(usernames)} students through the login form")
    gate = asyncio.Semaphore(8)

    async def one_login(name: str) -> str:
        async with gate:
            return await login(base_url, name, password)

    cookies = await asyncio.gather(*(one_login(u) for u in usernames))
    # Student i (0..chatting-1) chats; chatting..chatting+hostile-1 are hostile.
    idle_pairs = [
        (sid, cookies[i]) for b in idle_batches for i, sid in enumerate(sessions[b["key"]])
    ]

    client = Sockets(base_url)
    workers = web_worker_pids(port)
    rss_before = {pid: rss_kib(pid) for pid in workers}
    say(f"ASGI workers {workers}: VmRSS {sum(rss_before.values()) / 1024:.1f} MiB before")
    idle = await client.open_many(idle_pairs, args.batch, "idle sockets", deadline - 60)
    await asyncio.sleep(2)
    rss_after = {pid: rss_kib(pid) for pid in workers}
    held = sum(1 for ws in idle if ws is not None)
    per_socket = (sum(rss_after.values()) - sum(rss_before.values())) / held if held else None
    say(
        f"ASGI workers VmRSS {sum(rss_after.values()) / 1024:.1f} MiB with {held} idle sockets: "
        f"{per_socket or 0:.1f} KiB per idle socket"
    )
    result.update(
        idle_requested=len(idle_pairs),
        idle_open=held,
        worker_rss_kib_before=rss_before,
        worker_rss_kib_after=rss_after,
        kib_per_idle_socket=per_socket,
    )

    chat_sockets = []
    for p in range(phases):
        pairs = [(sid, cookies[i]) for i, sid in enumerate(sessions[f"chat{p}"])]
        chat_sockets.append(
            await client.open_many(pairs, args.batch, f"chat sockets {p}", deadline)
        )
    hostile_sessions = sessions.get("hostile", [])[args.chatting :]
    hostile_pairs = [(sid, cookies[args.chatting + i]) for i, sid in enumerate(hostile_sessions)]
    hostile_sockets = await client.open_many(hostile_pairs, args.batch, "hostile", deadline)
    hostile = Hostile(sessions=hostile_sessions)
    # Reopening after the flood guard closed a socket: a client of its own, so that its refused
    # connects are not counted as the run's connect failures.
    hostile_client_sockets = Sockets(base_url)
    reopeners = [
        functools.partial(hostile_client_sockets.open, sid, cookie) for sid, cookie in hostile_pairs
    ]
    warm_sockets = await client.open_many(
        [(sessions["warm"][0], cookies[0])], 1, "warm-up socket", deadline
    )
    # One reply first, so that the first phase does not pay for a cold model server.
    warm, _ = await chat_phase("warm-up", warm_sockets, sessions["warm"], [], None, deadline)

    all_chats: list[Chat] = []
    labels = (
        ["without hostile", f"with {args.hostile} hostile", "without hostile again"]
        if args.compare_hostile
        else ([f"with {args.hostile} hostile"] if args.hostile else ["chatting"])
    )
    summaries = {}
    for p, label in enumerate(labels):
        flooding = args.hostile and ("with" in label and "without" not in label)
        chats, wall = await chat_phase(
            label,
            chat_sockets[p],
            sessions[f"chat{p}"],
            hostile_sockets if flooding else [],
            hostile if flooding else None,
            deadline - 20,
            reopeners if flooding else None,
        )
        all_chats += chats
        summaries[label] = ttft_summary(chats) | {"wall_s": wall}
        print_phase(label, summaries[label], wall)
    result["phases"] = summaries
    if args.hostile:
        result["hostile"] = {
            "sent_messages": hostile.sent_messages,
            "sent_answers": hostile.sent_answers,
            "stored": len(hostile.acked),
            "replies": len(hostile.replies),
            "error_frames": hostile.errors,
            "closed_by_the_server": hostile.closed,
            "reconnects": hostile.reconnects,
            "refused_connects": hostile.refused_connects,
        }
        say(f"hostile clients: {result['hostile']}")
    if args.compare_hostile:
        before, during, after = (summaries[label]["ttft_p95"] for label in labels)
        if before and during and after:
            result["p95_ratio_hostile"] = during / ((before + after) / 2)
            result["p95_ratio_hostile_vs_before"] = during / before
            result["p95_ratio_hostile_vs_after"] = during / after
        say(
            "bystanders' p95 TTFT with hostile / mean without: "
            f"{result.get('p95_ratio_hostile')} (against the phase before: "
            f"{result.get('p95_ratio_hostile_vs_before')}, after: "
            f"{result.get('p95_ratio_hostile_vs_after')})"
        )

    # Sessions held: every socket opened, still open now.
    # (The hostile clients' sockets are closed by the flood guard, by design: not counted.)
    everything = idle + [ws for s in chat_sockets for ws in s] + warm_sockets
    from websockets.protocol import State

    still_open = sum(1 for ws in everything if ws is not None and ws.state is State.OPEN)
    result["sockets_requested"] = len(everything)
    result["sockets_held"] = still_open
    result["connect_errors"] = client.connect_errors
    say(
        f"sessions held: {still_open} of {len(everything)} sockets open at the end; "
        f"connect failures {sum(client.connect_errors.values())} {client.connect_errors or ''}"
    )
    say("closing sockets")
    for start in range(0, len(everything), args.batch):
        await asyncio.gather(
            *(ws.close() for ws in everything[start : start + args.batch] if ws is not None),
            return_exceptions=True,
        )
    await asyncio.sleep(3)  # replies of hostile clients still being written are stored

    result["database"] = await asyncio.to_thread(
        check_database,
        env["DATABASE_URL"],
        [s for p in range(phases) for s in sessions[f"chat{p}"]]
        + hostile.sessions
        + sessions["warm"],
        all_chats + warm,
        hostile,
    )
    say(f"database check: {result['database']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running deployment, e.g. http://127.0.0.1:8400")
    where.add_argument("--start", action="store_true", help="start scripts/deploy_local.sh")
    parser.add_argument("--connected", type=int, default=10000, help="sockets in all")
    parser.add_argument("--chatting", type=int, default=100)
    parser.add_argument("--hostile", type=int, default=0)
    parser.add_argument("--compare-hostile", action="store_true")
    parser.add_argument("--batch", type=int, default=250, help="sockets opened at once")
    parser.add_argument("--seconds", type=float, default=600, help="hard cap on the whole run")
    parser.add_argument("--port", type=int, default=8400, help="with --start")
    parser.add_argument("--vllm-port", type=int, default=8401, help="with --start")
    parser.add_argument(
        "--max-reply-tokens", type=int, default=32, help="with --start: TUTOR_MAX_REPLY_TOKENS"
    )
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the fixtures")
    args = parser.parse_args(argv)
    if args.compare_hostile and not args.hostile:
        parser.error("--compare-hostile needs --hostile K")
    deadline = T0 + args.seconds

    limit = raise_fd_limit(args.connected)
    say(f"open files limit {limit}")
    if limit < args.connected + 256:
        say(f"WARNING: {args.connected} sockets need more descriptors than {limit}")

    env = dict(os.environ)
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    env.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    env.setdefault("CHANNELS_PREFIX", "tutorload")
    env.setdefault("CACHE_PREFIX", "tutorload")
    env["DJANGO_SETTINGS_MODULE"] = "tutor.settings"
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env.pop(key, None)
        os.environ.pop(key, None)

    deployment = None
    result: dict = {"config": {k: str(v) for k, v in vars(args).items()}}
    try:
        if args.start:
            env["TUTOR_PORT"], env["VLLM_PORT"] = str(args.port), str(args.vllm_port)
            env["TUTOR_MAX_REPLY_TOKENS"] = str(args.max_reply_tokens)
            deployment = Deployment(env, args.port, REPO_ROOT / "var/log/deploy-load.log")
            deployment.start(deadline - 60)
            base_url = deployment.url
        else:
            base_url = args.url.rstrip("/")
            host = urllib.parse.urlsplit(base_url).hostname
            if host not in {"127.0.0.1", "localhost", "::1"}:
                parser.error("loopback only: --url must be on 127.0.0.1")
            if http_status(f"{base_url}/healthz") != 200:
                raise SystemExit(f"{base_url}/healthz does not answer")
        try:
            asyncio.run(
                asyncio.wait_for(
                    run(args, env, base_url, deadline - 30, result),
                    max(1.0, deadline - 25 - time.monotonic()),
                )
            )
        except TimeoutError:
            say(f"HARD CAP: --seconds {args.seconds} reached; figures so far only")
            result["timed_out"] = True
    finally:
        if result.get("prefix") and not args.keep:
            with contextlib.suppress(SystemExit):
                say("deleting the fixtures")
                run_fixtures("cleanup", {"prefix": result["prefix"]}, env)
        if deployment is not None:
            deployment.stop()
    result.pop("all_sessions", None)
    say("summary: " + json.dumps({k: v for k, v in result.items() if k != "config"}))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
