#!/usr/bin/env python
"""Chat latency and throughput: the platform (browser socket -> Channels consumer -> vLLM)
against clients that talk to the same vLLM server directly, in the same run.

    .venv/bin/python benchmarks/chat_latency.py --concurrency 1 8 32
    .venv/bin/python benchmarks/chat_latency.py --vllm-url http://127.0.0.1:8001/v1 --rounds 3

For each concurrency N (and round) it runs one platform batch and one direct batch, in
alternating order so that machine noise falls on both alike:

* platform: N students, logged in through the login form, each with a fresh tutoring session,
  open the chat socket and send the same message at the same moment. Per reply: time from the
  send to the first ``reply.delta`` (TTFT) and to ``reply.end``; completion tokens as stored
  with the tutor message.
* direct: N streaming chat completions (openai ``AsyncOpenAI``, ``stream=True``, usage
  included) with exactly the messages the consumer builds for that first student message
  (``tutor.dialogues.services.tutor_prompt``). TTFT: first non-empty content delta.

Both use temperature 0 and the same ``max_tokens``, so the replies (and token counts) match.
Throughput = sum of completion tokens / wall time of the batch (first send to last reply).
Goals: platform TTFT within 10% of direct, throughput loss under 10%.

The platform server is the real ASGI app under uvicorn in a subprocess, on a throwaway SQLite
database under a temporary folder, or on ``$DATABASE_URL`` when it is set (e.g. PostgreSQL;
its benchmark users and sessions are deleted afterwards); ``$REDIS_URL`` is honoured too.
Without ``--vllm-url`` a vLLM server is started with ``inference.launcher.VLLMServer`` on
``--model-dir`` (prepare it with ``python -m inference.prepare_model``).

The answer guard's cost (``--compare-guard``)::

    .venv/bin/python benchmarks/chat_latency.py --compare-guard --concurrency 1 8 32

starts a second platform server on the same database with ``TUTOR_GUARD=false`` (the first
runs with ``TUTOR_GUARD=true``) and adds a third batch to every round (``noguard``), the order
of the three rotating from round to round. It reports guard-on against guard-off and each
against direct vLLM. How much text the guard holds back is not visible over the socket: it is
measured by replaying every direct reply's streamed deltas, with their arrival times, through
``pedagogy.guard.AnswerGuard(...).start()`` for the benchmark's problem (characters held after
each delta, and how long each character waits before it is released).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import os
import platform
import random
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from inference.launcher import VLLMServer, free_port, http_status

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().with_name("_fixtures.py")
DEFAULT_MODEL_DIR = "var/models/SmolLM2-135M-Instruct"
DEFAULT_SERVED_NAME = "smollm2-135m-instruct"
STUDENT_MESSAGE = "I don't know how to start this problem. Can you help me with the first step?"
GOAL = 0.10  # at most 10% TTFT overhead and 10% throughput loss


def say(text: str) -> None:
    print(text, flush=True)


# ---- statistics --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (q in 0..1)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# ---- records ---------------------------------------------------------------------------------


@dataclass
class Reply:
    """One reply as a client saw it; times in ms from the send."""

    ttft_ms: float | None
    end_ms: float | None
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    frames: int = 0
    chars: int = 0
    error: str = ""
    # platform only
    session_id: int | None = None
    ack_ms: float | None = None  # the stored student message came back
    start_ms: float | None = None  # reply.start
    last_delta_ms: float | None = None
    server_ttft_ms: float | None = None  # the consumer's own measure (from the model call)
    server_duration_ms: float | None = None


@dataclass
class Batch:
    kind: str  # "platform" | "direct"
    concurrency: int
    round: int
    wall_s: float
    replies: list[Reply]
    server_cpu_s: float = 0.0  # CPU time the platform server used during the batch
    client_cpu_s: float = 0.0  # CPU time this benchmark process used during the batch
    # Average CPU cores that processes other than this benchmark's (its vLLM, its platform
    # server, itself) used during the batch: the machine noise the batch saw. None: unknown.
    foreign_cores: float | None = None

    @property
    def tokens(self) -> int:
        return sum(r.completion_tokens or 0 for r in self.replies)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.replies if r.error)


# ---- processes -----------------------------------------------------------------------------


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux /proc; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class NoiseMonitor:
    """How much CPU other processes use: the machine's busy time less that of this benchmark's
    own processes (this one, the platform server, and vLLM when it was started here)."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    def snapshot(self) -> tuple[float, float, float]:
        ours = own_cpu() + sum(process_tree_cpu(pid) for pid in self.pids)
        return machine_busy_seconds(), ours, time.monotonic()

    @staticmethod
    def foreign_cores(before: tuple[float, float, float], after: tuple[float, float, float]):
        elapsed = after[2] - before[2]
        if elapsed <= 0:
            return 0.0
        return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / elapsed)

    async def wait_quiet(self, limit: float, max_wait: float) -> float:
        """Wait (up to ``max_wait`` s) until others use at most ``limit`` cores."""
        deadline = time.monotonic() + max_wait
        announced = False
        while True:
            before = self.snapshot()
            await asyncio.sleep(1.5)
            cores = self.foreign_cores(before, self.snapshot())
            if cores <= limit:
                return cores
            if time.monotonic() > deadline:
                say(f"    other processes still use {cores:.2f} cores; going on anyway")
                return cores
            if not announced:
                say(f"    other processes use {cores:.2f} cores; waiting for a quiet machine")
                announced = True


def served_model_names(api_base: str) -> list[str]:
    with urllib.request.urlopen(f"{api_base}/models", timeout=10) as response:
        return [m["id"] for m in json.load(response)["data"]]


def run_fixtures(command: str, spec: dict, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, str(FIXTURES), command],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmarks/_fixtures.py {command} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


class PlatformServer:
    """``python -m uvicorn tutor.asgi:application`` in a subprocess."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        workers: int = 1,
        app: str = "tutor.asgi:application",
    ) -> None:
        self.port = free_port()
        self.env = env
        self.log_path = log_path
        self.command = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ws",
            "websockets-sansio",
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ]
        if workers > 1:
            self.command += ["--workers", str(workers)]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        return process_tree_cpu(self.process.pid) if self.process is not None else 0.0

    def __enter__(self) -> PlatformServer:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while http_status(f"{self.url}/healthz") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"the platform server did not start; log:\n{tail}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, 15)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(5)


# ---- the platform side -------------------------------------------------------------------------


async def login(base_url: str, username: str, password: str) -> str:
    """Log in through the login form (CSRF token and cookie); return the sessionid cookie."""
    import httpx

    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=60) as client:
        page = await client.get("/accounts/login/")
        page.raise_for_status()
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if match is None:
            raise RuntimeError("no CSRF token on the login page")
        response = await client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": match.group(1),
                "next": "/",
            },
            headers={"Referer": f"{base_url}/accounts/login/"},
        )
        if response.status_code != 302 or "sessionid" not in client.cookies:
            raise RuntimeError(f"login of {username} failed ({response.status_code})")
        return client.cookies["sessionid"]


def _ws_connect_kwargs() -> dict:
    from websockets.asyncio.client import connect

    kwargs: dict = {"open_timeout": 60, "ping_interval": None, "max_size": 2**22}
    if "proxy" in inspect.signature(connect).parameters:
        kwargs["proxy"] = None  # never route 127.0.0.1 through an environment proxy
    return kwargs


async def platform_batch(
    base_url: str,
    cookies: list[str],
    session_ids: list[int],
    message: str,
    limit_s: float,
) -> tuple[float, list[Reply]]:
    """N sockets opened first (not timed), then N messages sent at the same moment."""
    from websockets.asyncio.client import connect

    ws_base = base_url.replace("http://", "ws://")
    kwargs = _ws_connect_kwargs()

    async def open_socket(i: int):
        ws = await connect(
            f"{ws_base}/ws/sessions/{session_ids[i]}/",
            origin=base_url,
            additional_headers=[("Cookie", f"sessionid={cookies[i]}")],
            **kwargs,
        )
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if first.get("type") != "session":
            raise RuntimeError(f"session {session_ids[i]}: expected the transcript, got {first}")
        return ws

    sockets = await asyncio.gather(*(open_socket(i) for i in range(len(session_ids))))
    go = asyncio.Event()

    async def chat(i: int) -> Reply:
        ws = sockets[i]
        reply = Reply(ttft_ms=None, end_ms=None, session_id=session_ids[i])
        await go.wait()
        t0 = time.perf_counter()
        await ws.send(
            json.dumps({"type": "message", "text": message, "client_id": str(uuid.uuid4())})
        )
        while True:
            frame = json.loads(await ws.recv())
            ms = (time.perf_counter() - t0) * 1000
            kind = frame.get("type")
            if kind == "message":
                reply.ack_ms = ms
            elif kind == "reply.start":
                reply.start_ms = ms
            elif kind == "reply.delta":
                if reply.ttft_ms is None:
                    reply.ttft_ms = ms
                reply.last_delta_ms = ms
                reply.frames += 1
                reply.chars += len(frame.get("text", ""))
            elif kind == "error":
                reply.error = frame.get("code", "error")
                if reply.start_ms is None:  # refused before a reply began: nothing more comes
                    reply.end_ms = ms
                    return reply
            elif kind == "reply.end":
                reply.end_ms = ms
                stored = frame.get("message") or {}
                if stored.get("partial"):
                    reply.error = reply.error or "partial"
                return reply

    tasks = [asyncio.create_task(chat(i)) for i in range(len(sockets))]
    await asyncio.sleep(0.05)  # every task is waiting on the event
    started = time.perf_counter()
    go.set()
    try:
        replies = await asyncio.wait_for(asyncio.gather(*tasks), limit_s)
        wall = time.perf_counter() - started  # first send to last reply.end
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return wall, list(replies)


# ---- the direct side ---------------------------------------------------------------------------


async def direct_batch(
    client,
    model: str,
    prompt: list[dict],
    max_tokens: int,
    n: int,
    limit_s: float,
    chunks: list[list[tuple[float, str]]] | None = None,
) -> tuple[float, list[Reply]]:
    """N direct streams at once. ``chunks``, when given, receives each reply's content deltas
    as (ms from the send, text), for the guard replay (:func:`guard_hold`)."""
    go = asyncio.Event()

    async def one() -> Reply:
        reply = Reply(ttft_ms=None, end_ms=None)
        pieces: list[tuple[float, str]] = []
        if chunks is not None:
            chunks.append(pieces)
        await go.wait()
        t0 = time.perf_counter()
        try:
            stream = await client.chat.completions.create(
                model=model,
                messages=prompt,
                max_tokens=max_tokens,
                temperature=0.0,
                stream=True,
                stream_options={"include_usage": True},
            )
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
                        text = choice.delta.content if choice.delta else None
                        if text:
                            if reply.ttft_ms is None:
                                reply.ttft_ms = (time.perf_counter() - t0) * 1000
                            pieces.append(((time.perf_counter() - t0) * 1000, text))
                            reply.frames += 1
                            reply.chars += len(text)
                    if chunk.usage is not None:
                        reply.completion_tokens = chunk.usage.completion_tokens
                        reply.prompt_tokens = chunk.usage.prompt_tokens
        except Exception as exc:
            reply.error = f"{type(exc).__name__}: {exc}"[:200]
        reply.end_ms = (time.perf_counter() - t0) * 1000
        return reply

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    go.set()
    replies = await asyncio.wait_for(asyncio.gather(*tasks), limit_s)
    return time.perf_counter() - started, list(replies)


def guard_hold(chunks: list[tuple[float, str]], guard_factory) -> dict[str, float | int | bool]:
    """Replay one streamed reply through the answer guard: the characters held back after each
    delta (most and mean), and how long each released character waited between its arrival
    and its release (most and mean, ms; text still held at the end waits until the last
    delta). ``guard_factory()`` returns a fresh ``pedagogy.guard.AnswerGuard``. A reply the
    guard would stop is replayed up to the violation (``stopped``)."""
    checker = guard_factory().start()
    arrivals: list[float] = []  # arrival time of every character not yet released
    held_after: list[int] = []
    waits: list[float] = []
    released = 0
    stopped = False
    last_ms = chunks[-1][0] if chunks else 0.0
    for at_ms, text in chunks:
        arrivals.extend([at_ms] * len(text))
        release = checker.feed(text)
        if release.violation is not None:
            stopped = True
            break
        out = len(release.text)
        waits.extend(at_ms - arrivals[i] for i in range(released, released + out))
        released += out
        held_after.append(len(checker.text) - checker.released)
    if not stopped:
        release = checker.finish()
        if release.violation is None:
            out = len(release.text)
            waits.extend(last_ms - arrivals[i] for i in range(released, released + out))
    return {
        "deltas": len(held_after),
        "held_chars_max": max(held_after, default=0),
        "held_chars_mean": sum(held_after) / len(held_after) if held_after else 0.0,
        "held_ms_max": max(waits, default=0.0),
        "held_ms_mean": sum(waits) / len(waits) if waits else 0.0,
        "stopped": stopped,
    }


def summarize_hold(replays: list[dict]) -> dict[str, float | int | None]:
    """The guard replays of one N together: held characters after a delta (most; mean over
    all deltas) and the wait of a released character (most; mean over all characters)."""
    deltas = sum(r["deltas"] for r in replays)
    return {
        "replies": len(replays),
        "stopped": sum(1 for r in replays if r["stopped"]),
        "held_chars_max": max((r["held_chars_max"] for r in replays), default=None),
        "held_chars_mean": (
            sum(r["held_chars_mean"] * r["deltas"] for r in replays) / deltas if deltas else None
        ),
        "held_ms_max": max((r["held_ms_max"] for r in replays), default=None),
        "held_ms_mean_per_reply_median": percentile([r["held_ms_mean"] for r in replays], 0.5),
    }


# ---- summary -------------------------------------------------------------------------------------


def summarize(batches: list[Batch]) -> dict:
    ttft = [r.ttft_ms for b in batches for r in b.replies if r.ttft_ms is not None]
    end = [r.end_ms for b in batches for r in b.replies if r.end_ms is not None]
    tokens = sum(b.tokens for b in batches)
    wall = sum(b.wall_s for b in batches)
    out = {
        "replies": sum(len(b.replies) for b in batches),
        "errors": sum(b.errors for b in batches),
        "ttft_ms_median": percentile(ttft, 0.5),
        "ttft_ms_p95": percentile(ttft, 0.95),
        "end_ms_median": percentile(end, 0.5),
        "end_ms_p95": percentile(end, 0.95),
        "completion_tokens": tokens,
        "wall_s": wall,
        # The median batch: one batch slowed by another process cannot swing it.
        "tokens_per_s": percentile([b.tokens / b.wall_s for b in batches if b.wall_s], 0.5),
        "tokens_per_s_pooled": tokens / wall if wall else None,
        "server_cpu_s": sum(b.server_cpu_s for b in batches),
        "client_cpu_s": sum(b.client_cpu_s for b in batches),
    }
    replies = [r for b in batches for r in b.replies]
    if any(r.ack_ms is not None for r in replies):
        # Where the platform's TTFT goes: the stored message coming back, reply.start, the
        # consumer's own model TTFT (from its model call to the first token).
        def med(values: list[float | None]) -> float | None:
            return percentile([v for v in values if v is not None], 0.5)

        out["breakdown_ms_median"] = {
            "ack": med([r.ack_ms for r in replies]),
            "reply_start": med([r.start_ms for r in replies]),
            "server_model_ttft": med([r.server_ttft_ms for r in replies]),
            "last_delta": med([r.last_delta_ms for r in replies]),
            "server_duration": med([r.server_duration_ms for r in replies]),
        }
        out["frames_per_reply_median"] = med([float(r.frames) for r in replies])
    return out


def rounds_for(args: argparse.Namespace, n: int) -> int:
    """Rounds at concurrency ``n``: ``--rounds``, or more until each side has
    ``--min-replies`` replies."""
    return max(args.rounds, math.ceil(args.min_replies / n))


def ratio_intervals(
    platform_batches: list[Batch], direct_batches: list[Batch], resamples: int, seed: int = 0
) -> dict[str, tuple[float, float] | None]:
    """95% percentile-bootstrap intervals of the TTFT-median and throughput ratios.

    The unit resampled is the round (a platform batch with the direct batch of the same
    round): replies of one batch share the model server's scheduling steps, so they are not
    independent of each other.
    """
    platform_by_round = {b.round: b for b in platform_batches}
    direct_by_round = {b.round: b for b in direct_batches}
    rounds = sorted(platform_by_round.keys() & direct_by_round.keys())
    if resamples == 0 or len(rounds) < 2:
        return {"ttft_median_ratio": None, "throughput_ratio": None}

    def ttft_median(batches: list[Batch]) -> float | None:
        return percentile([r.ttft_ms for b in batches for r in b.replies if r.ttft_ms], 0.5)

    def throughput(batches: list[Batch]) -> float | None:
        return percentile([b.tokens / b.wall_s for b in batches if b.wall_s], 0.5)

    rng = random.Random(seed)
    ttft_ratios, throughput_ratios = [], []
    for _ in range(resamples):
        picked = [rng.choice(rounds) for _ in rounds]
        plat = [platform_by_round[r] for r in picked]
        dire = [direct_by_round[r] for r in picked]
        if (value := ratio(ttft_median(plat), ttft_median(dire))) is not None:
            ttft_ratios.append(value)
        if (value := ratio(throughput(plat), throughput(dire))) is not None:
            throughput_ratios.append(value)

    def interval(values: list[float]) -> tuple[float, float] | None:
        return (percentile(values, 0.025), percentile(values, 0.975)) if values else None

    return {
        "ttft_median_ratio": interval(ttft_ratios),
        "throughput_ratio": interval(throughput_ratios),
    }


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(
    n: int,
    platform_s: dict,
    direct_s: dict,
    intervals: dict[str, tuple[float, float] | None],
    labels: tuple[str, str] = ("platform", "direct"),
) -> dict:
    """Print one side against the other (``labels``: their names) and return the ratios."""
    first, second = labels
    ttft_ratio = ratio(platform_s["ttft_ms_median"], direct_s["ttft_ms_median"])
    p95_ratio = ratio(platform_s["ttft_ms_p95"], direct_s["ttft_ms_p95"])
    end_ratio = ratio(platform_s["end_ms_median"], direct_s["end_ms_median"])
    tps_ratio = ratio(platform_s["tokens_per_s"], direct_s["tokens_per_s"])
    rows = [
        ("TTFT median (ms)", "ttft_ms_median", ttft_ratio),
        ("TTFT p95 (ms)", "ttft_ms_p95", p95_ratio),
        ("reply end median (ms)", "end_ms_median", end_ratio),
        ("throughput (tokens/s)*", "tokens_per_s", tps_ratio),
        ("completion tokens", "completion_tokens", None),
        ("platform server CPU (s)", "server_cpu_s", None),
        ("benchmark client CPU (s)", "client_cpu_s", None),
        ("errors", "errors", None),
    ]
    say("")
    say(f"== N = {n}  ({platform_s['replies']} {first} / {direct_s['replies']} {second} replies)")
    interval_of = {
        "ttft_ms_median": intervals.get("ttft_median_ratio"),
        "tokens_per_s": intervals.get("throughput_ratio"),
    }
    short = f"{first[:8]}/{second[:8]}" if labels != ("platform", "direct") else "plat/direct"
    say(f"   {'':24}{first:>12}{second:>12}{short:>13}   95% interval")
    for label, key, r in rows:
        band = interval_of.get(key)
        band_text = f"   [{band[0]:.3f}, {band[1]:.3f}]" if band else ""
        say(
            f"   {label:24}{fmt(platform_s[key]):>12}{fmt(direct_s[key]):>12}"
            f"{fmt(r, '.3f'):>13}{band_text}"
        )
    say("   * median over the batches of completion tokens / batch wall time")
    say(f"   intervals: bootstrap over rounds (a {first} batch with its {second} batch)")
    breakdown = platform_s.get("breakdown_ms_median")
    if breakdown:
        say(
            "   platform medians (ms): stored message back {ack}, reply.start {reply_start}, "
            "consumer's model TTFT {server_model_ttft}, last delta {last_delta}; "
            "{frames} delta frames per reply".format(
                **{k: fmt(v) for k, v in breakdown.items()},
                frames=fmt(platform_s.get("frames_per_reply_median"), ".0f"),
            )
        )
    ttft_overhead = None if ttft_ratio is None else ttft_ratio - 1
    tps_loss = None if tps_ratio is None else 1 - tps_ratio
    # A reply that failed is not in the medians: with any error the figures say nothing.
    failed = platform_s["errors"] + direct_s["errors"]
    ttft_ok = not failed and ttft_overhead is not None and ttft_overhead < GOAL
    tps_ok = not failed and tps_loss is not None and tps_loss < GOAL
    say(
        f"   goal: TTFT overhead {fmt(None if ttft_overhead is None else ttft_overhead * 100)}% "
        f"(< {GOAL:.0%}: {'ok' if ttft_ok else 'MISSED'}), throughput loss "
        f"{fmt(None if tps_loss is None else tps_loss * 100)}% "
        f"(< {GOAL:.0%}: {'ok' if tps_ok else 'MISSED'})"
        + (f"; MISSED: {failed} replies failed" if failed else "")
    )
    return {
        "ttft_median_ratio": ttft_ratio,
        "ttft_p95_ratio": p95_ratio,
        "end_median_ratio": end_ratio,
        "throughput_ratio": tps_ratio,
        "ttft_overhead": ttft_overhead,
        "throughput_loss": tps_loss,
        "ttft_goal_met": ttft_ok,
        "throughput_goal_met": tps_ok,
        "ttft_median_ratio_95ci": intervals.get("ttft_median_ratio"),
        "throughput_ratio_95ci": intervals.get("throughput_ratio"),
    }


# ---- the run -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Platform vs direct vLLM: time to first token and throughput.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--rounds", type=int, default=1, help="platform/direct pairs of batches per N, at least"
    )
    parser.add_argument(
        "--min-replies",
        type=int,
        default=16,
        help="more rounds for a small N until each side has this many replies: one reply per "
        "batch (N = 1) is too few for a median, and the model server's step boundaries make "
        "single batches noisy",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=2000, help="resamples for the ratios' 95%% intervals"
    )
    parser.add_argument(
        "--vllm-url", default=None, help="a running OpenAI-compatible server (.../v1)"
    )
    parser.add_argument(
        "--served-model-name",
        default=None,
        help=f"model name to ask for (default: {DEFAULT_SERVED_NAME} for a server started "
        "here, the first model a --vllm-url server lists otherwise)",
    )
    parser.add_argument(
        "--model-dir", default=DEFAULT_MODEL_DIR, help="model a started vLLM serves"
    )
    parser.add_argument(
        "--enable-lora",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start vLLM with LoRA enabled, as scripts/start.sh serves (promoted versions are "
        "adapters); --no-enable-lora for a base-only server",
    )
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--message", default=STUDENT_MESSAGE, help="the student's message")
    parser.add_argument(
        "--asgi-app",
        default="tutor.asgi:application",
        help="the ASGI application uvicorn serves (to try a variant of the consumer)",
    )
    parser.add_argument("--web-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--platform-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the platform server, e.g. TUTOR_COALESCE_SECONDS=0",
    )
    parser.add_argument(
        "--vllm-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for a vLLM server started here, e.g. OMP_NUM_THREADS=1",
    )
    parser.add_argument(
        "--vllm-cpus",
        default=None,
        metavar="LIST",
        help="pin a vLLM started here to these CPUs, e.g. 0 (with --vllm-env "
        "OMP_NUM_THREADS=1): keeps the platform's own CPU use from slowing the model on a "
        "small machine, as on a deployment where web and model servers are separate hosts",
    )
    parser.add_argument(
        "--vllm-nice",
        type=int,
        default=10,
        metavar="N",
        help="run a vLLM started here at this niceness, as scripts/start.sh does "
        "($TUTOR_VLLM_NICE, default 10): on a machine shared with the platform, the platform's "
        "short bursts of work then go before the model server's long ones",
    )
    parser.add_argument(
        "--platform-cpus",
        default=None,
        metavar="LIST",
        help="pin the platform server and this benchmark (its clients) to these CPUs, e.g. 1",
    )
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=0.15,
        help="other processes may use at most this many cores before and during a batch; "
        "a pair of batches that saw more is run again (--retries)",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=300.0, help="most seconds to wait for quiet"
    )
    parser.add_argument("--retries", type=int, default=2, help="reruns of a noisy pair")
    parser.add_argument("--batch-timeout", type=float, default=600.0)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between batches")
    parser.add_argument(
        "--compare-guard",
        action="store_true",
        help="also run a platform server with TUTOR_GUARD=false (the first gets TUTOR_GUARD="
        "true): guard on against guard off against direct vLLM, and the text the guard holds",
    )
    parser.add_argument(
        "--problem",
        type=Path,
        default=None,
        help="a JSON problem (title, text, final_answer, ...) instead of the fixtures' one: "
        "with --compare-guard, one whose replies do not state the answer measures what the "
        "guard costs without its retries",
    )
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--keep-temp", action="store_true", help="keep logs and the database")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.concurrency) or args.rounds < 1:
        parser.error("--concurrency values and --rounds must be at least 1")
    if args.min_replies < 0 or args.bootstrap < 0:
        parser.error("--min-replies and --bootstrap cannot be negative")
    return args


def platform_environment(args: argparse.Namespace, tmp: Path, api_base: str, model: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tutor.settings",
            "TUTOR_VAR_DIR": str(tmp / "var"),
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "DJANGO_DEBUG": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "TUTOR_MODEL_BASE_URL": api_base,
            "TUTOR_MODEL_NAME": model,
            "TUTOR_MAX_REPLY_TOKENS": str(args.max_tokens),
            "TUTOR_TEMPERATURE": "0",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
    )
    if not os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    env.update(key_values(args.platform_env, "--platform-env"))
    return env


def cpu_list(text: str | None) -> set[int] | None:
    """'0', '0,1' or '0-3' as a set of CPU numbers."""
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Pin a process, its threads and its children to ``cpus``."""
    todo = [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)
                with contextlib.suppress(OSError, ValueError):
                    todo += [int(c) for c in (task / "children").read_text().split()]


def key_values(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{option} wants KEY=VALUE, not {item!r}")
        pairs[key] = value
    return pairs


async def measure(
    args: argparse.Namespace,
    server: PlatformServer,
    fixtures: dict,
    password: str,
    api_base: str,
    model: str,
    env: dict[str, str],
    vllm_pid: int | None,
    discarded: list[Batch],
    noguard_server: PlatformServer | None = None,
    holds: dict[int, list[dict]] | None = None,
) -> list[Batch]:
    """The batches of every round. With ``noguard_server`` (``--compare-guard``) each round
    has a third batch on it (kind ``noguard``) and ``holds`` receives, per N, the guard
    replay of every direct reply (:func:`guard_hold`)."""
    import httpx
    from openai import AsyncOpenAI

    # The same client settings as the platform's (inference.client.get_client).
    direct = AsyncOpenAI(
        base_url=api_base,
        api_key=os.environ.get("TUTOR_MODEL_API_KEY", "not-needed"),
        timeout=httpx.Timeout(args.batch_timeout, connect=5.0),
        max_retries=0,
    )
    prompt = fixtures["prompt"]
    monitor = NoiseMonitor()

    say(f"... logging in {len(fixtures['usernames'])} students through /accounts/login/")
    limit = asyncio.Semaphore(4)

    async def login_one(username: str) -> str:
        async with limit:
            return await login(server.url, username, password)

    cookies = await asyncio.gather(*(login_one(u) for u in fixtures["usernames"]))
    noguard_cookies: list[str] = []
    if noguard_server is not None:

        async def login_noguard(username: str) -> str:
            async with limit:
                return await login(noguard_server.url, username, password)

        noguard_cookies = await asyncio.gather(*(login_noguard(u) for u in fixtures["usernames"]))

    servers = [s for s in (server, noguard_server) if s is not None]
    monitor.pids = [s.process.pid for s in servers if s.process is not None]
    if vllm_pid is not None:
        monitor.pids.append(vllm_pid)

    def servers_cpu() -> float:
        return sum(s.cpu_seconds() for s in servers)

    guard_factory = None
    if holds is not None:
        from pedagogy.guard import AnswerGuard

        problem = load_fixture_problem(args.problem)

        def guard_factory() -> AnswerGuard:
            return AnswerGuard(
                final_answer=problem["final_answer"],
                problem_text=problem["text"],
                student_texts=[args.message],
            )

    async def run_platform(key: str, n: int, rnd: int, kind: str = "platform") -> Batch:
        ids = fixtures["sessions"][key]
        target, jar = (server, cookies) if kind == "platform" else (noguard_server, noguard_cookies)
        cpu0, own0, noise0 = target.cpu_seconds(), own_cpu(), monitor.snapshot()
        wall, replies = await platform_batch(
            target.url, jar[:n], ids, args.message, args.batch_timeout
        )
        noise = monitor.foreign_cores(noise0, monitor.snapshot())
        server_cpu, client_cpu = target.cpu_seconds() - cpu0, own_cpu() - own0
        stored = run_fixtures("report", {"sessions": ids}, env)["messages"]
        by_session = {m["session"]: m for m in stored}
        for reply in replies:
            row = by_session.get(reply.session_id)
            if row is None:
                reply.error = reply.error or "no tutor message stored"
                continue
            reply.completion_tokens = row["completion_tokens"]
            reply.prompt_tokens = row["prompt_tokens"]
            reply.server_ttft_ms = row["time_to_first_token_ms"]
            reply.server_duration_ms = row["duration_ms"]
        batch = Batch(kind, n, rnd, wall, replies, server_cpu, client_cpu)
        batch.foreign_cores = noise if vllm_pid is not None else None
        return batch

    async def run_direct(n: int, rnd: int) -> Batch:
        cpu0, own0, noise0 = servers_cpu(), own_cpu(), monitor.snapshot()
        chunks: list[list[tuple[float, str]]] | None = [] if guard_factory else None
        wall, replies = await direct_batch(
            direct, model, prompt, args.max_tokens, n, args.batch_timeout, chunks
        )
        noise = monitor.foreign_cores(noise0, monitor.snapshot())
        server_cpu, client_cpu = servers_cpu() - cpu0, own_cpu() - own0
        batch = Batch("direct", n, rnd, wall, replies, server_cpu, client_cpu)
        batch.foreign_cores = noise if vllm_pid is not None else None
        if guard_factory is not None and holds is not None and rnd > 0:
            holds.setdefault(n, []).extend(guard_hold(c, guard_factory) for c in chunks or [])
        return batch

    def report(batch: Batch) -> None:
        ttft = [r.ttft_ms for r in batch.replies if r.ttft_ms is not None]
        line = (
            f"    {batch.kind:8} N={batch.concurrency:<3} {batch.wall_s:6.2f}s  "
            f"{batch.tokens:5d} tokens  {batch.tokens / batch.wall_s:7.1f} tok/s  "
            f"TTFT median {fmt(percentile(ttft, 0.5)):>7} ms  CPU s: platform server "
            f"{batch.server_cpu_s:.2f}, client {batch.client_cpu_s:.2f}, "
            f"other processes {fmt(batch.foreign_cores, '.2f')} cores"
        )
        if batch.errors:
            errors = sorted({r.error for r in batch.replies if r.error})
            line += f"  ERRORS: {batch.errors} ({'; '.join(errors)[:200]})"
        say(line)

    say("... warming up (one reply each way; not counted)")
    await monitor.wait_quiet(args.quiet_cores, args.quiet_wait)
    report(await run_platform("warmup", 1, 0))
    if noguard_server is not None:
        report(await run_platform("g0-warmup", 1, 0, "noguard"))
    report(await run_direct(1, 0))

    batches: list[Batch] = []
    for rnd in range(1, max(rounds_for(args, n) for n in args.concurrency) + 1):
        for index, n in enumerate(args.concurrency):
            if rnd > rounds_for(args, n):
                continue
            if noguard_server is None:
                order = ["platform", "direct"] if (rnd + index) % 2 else ["direct", "platform"]
            else:  # each kind first, second and third in turn
                kinds = ["platform", "noguard", "direct"]
                turn = (rnd + index) % 3
                order = kinds[turn:] + kinds[:turn]
            for attempt in range(args.retries + 1):
                again = f", attempt {attempt + 1}" if attempt else ""
                say(f"--- round {rnd}/{rounds_for(args, n)}, N = {n}{again}")
                pair = []
                for kind in order:
                    await asyncio.sleep(args.pause)
                    await monitor.wait_quiet(args.quiet_cores, args.quiet_wait)
                    if kind == "platform":
                        batch = await run_platform(f"r{rnd}-n{n}-a{attempt}", n, rnd)
                    elif kind == "noguard":
                        batch = await run_platform(f"g0-r{rnd}-n{n}-a{attempt}", n, rnd, "noguard")
                    else:
                        batch = await run_direct(n, rnd)
                    report(batch)
                    pair.append(batch)
                noisy = [
                    b.foreign_cores
                    for b in pair
                    if b.foreign_cores is not None and b.foreign_cores > args.quiet_cores
                ]
                if not noisy or attempt == args.retries:
                    batches += pair
                    break
                say(
                    f"    other processes used up to {max(noisy):.2f} cores during the pair; "
                    "running it again"
                )
                discarded.extend(pair)
    await direct.close()
    return batches


def guard_comparison(
    n: int, batches: list[Batch], holds: dict[int, list[dict]], resamples: int
) -> dict:
    """Guard on (``platform``) against guard off (``noguard``), guard off against direct, and
    the text the guard holds back (replays of the direct replies), printed and returned."""
    of = {
        kind: [b for b in batches if b.kind == kind and b.concurrency == n]
        for kind in ("platform", "noguard", "direct")
    }
    on, off, direct = (summarize(of[k]) for k in ("platform", "noguard", "direct"))
    on_off = print_table(
        n,
        on,
        off,
        ratio_intervals(of["platform"], of["noguard"], resamples),
        ("guard on", "guard off"),
    )
    off_direct = print_table(
        n,
        off,
        direct,
        ratio_intervals(of["noguard"], of["direct"], resamples),
        ("guard off", "direct"),
    )
    hold = summarize_hold(holds.get(n, []))
    say(
        f"   held back by the guard (direct replies replayed, {hold['replies']} replies): "
        f"at most {hold['held_chars_max']} characters, mean {fmt(hold['held_chars_mean'], '.2f')}"
        f" after a delta; a character waits at most {fmt(hold['held_ms_max'])} ms, median of the "
        f"per-reply means {fmt(hold['held_ms_mean_per_reply_median'], '.2f')} ms"
        + (f"; {hold['stopped']} replies would have been stopped" if hold["stopped"] else "")
    )
    return {
        "noguard": off,
        "guard_on_vs_off": on_off,
        "guard_off_vs_direct": off_direct,
        "guard_hold": hold,
    }


def load_fixture_problem(path: Path | None = None) -> dict:
    """The problem every benchmark session is on: ``path`` (a JSON object with ``title``,
    ``text``, ``final_answer`` and optionally ``solution``, ``skills``, ``difficulty``), else
    the one ``benchmarks/_fixtures.py`` gives."""
    import importlib.util

    if path is not None:
        problem = json.loads(Path(path).read_text(encoding="utf-8"))
        missing = {"title", "text", "final_answer"} - set(problem)
        if missing:
            raise SystemExit(f"{path}: the problem needs {', '.join(sorted(missing))}")
        return problem

    spec = importlib.util.spec_from_file_location("_bench_fixtures", FIXTURES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.PROBLEM)


def batch_record(batch: Batch) -> dict:
    return {
        "kind": batch.kind,
        "concurrency": batch.concurrency,
        "round": batch.round,
        "wall_s": batch.wall_s,
        "tokens": batch.tokens,
        "server_cpu_s": batch.server_cpu_s,
        "client_cpu_s": batch.client_cpu_s,
        "foreign_cores": batch.foreign_cores,
        "replies": [asdict(r) for r in batch.replies],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT))
    os.chdir(REPO_ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    say(f"chat latency benchmark; logs and data in {tmp}")
    external_db = bool(os.environ.get("DATABASE_URL"))
    prefix = f"bench{uuid.uuid4().hex[:8]}_"
    env: dict[str, str] | None = None
    results: dict = {}
    try:
        with contextlib.ExitStack() as stack:
            # -- the model server
            if args.vllm_url:
                api_base = args.vllm_url.rstrip("/")
                if not api_base.endswith("/v1"):
                    api_base += "/v1"
                vllm_pid = None  # not ours: its CPU use cannot be told from others'
                names = served_model_names(api_base)
                model = args.served_model_name or names[0]
                say(f"vLLM: {api_base} (serves {', '.join(names)}; using {model})")
                vllm_info = {"url": api_base, "started_here": False}
            else:
                model = args.served_model_name or DEFAULT_SERVED_NAME
                server = VLLMServer(
                    args.model_dir,
                    port=None,
                    served_model_name=model,
                    env={**os.environ, **key_values(args.vllm_env, "--vllm-env")},
                    log_path=tmp / "vllm.log",
                    ready_timeout=900,
                    enable_lora=args.enable_lora,
                    nice=args.vllm_nice,
                )
                say(f"... starting vLLM on {args.model_dir} (log {tmp / 'vllm.log'})")
                say(f"    {' '.join(server.command)}")
                server.start()
                stack.callback(server.stop)
                vllm_cpus = cpu_list(args.vllm_cpus)
                # Before the API server spawns its engine core, which inherits it; again
                # once it is up, for threads started in between.
                if vllm_cpus:
                    pin_tree(server.process.pid, vllm_cpus)
                server.wait_ready()
                if vllm_cpus:
                    pin_tree(server.process.pid, vllm_cpus)
                    say(f"vLLM pinned to CPUs {sorted(vllm_cpus)}")
                if args.vllm_nice:
                    say(f"vLLM at niceness {args.vllm_nice}")
                api_base = server.api_base
                vllm_pid = server.process.pid
                say(f"vLLM ready at {api_base} after {server.ready_after:.1f}s")
                vllm_info = {
                    "url": api_base,
                    "started_here": True,
                    "command": server.command,
                    "ready_after_s": server.ready_after,
                }

            # -- the platform: database fixtures, then the ASGI server
            env = platform_environment(args, tmp, api_base, model)
            password = secrets.token_urlsafe(12)
            batches_spec = [{"key": "warmup", "size": 1}] + [
                {"key": f"r{r}-n{n}-a{a}", "size": n}
                for n in args.concurrency
                for r in range(1, rounds_for(args, n) + 1)
                for a in range(args.retries + 1)
            ]
            if args.compare_guard:  # sessions for the guard-off server's batches
                batches_spec += [{**b, "key": f"g0-{b['key']}"} for b in batches_spec]
            say(
                "... database: "
                + ("$DATABASE_URL" if external_db else f"throwaway SQLite {env['DATABASE_URL']}")
            )
            fixtures = run_fixtures(
                "setup",
                {
                    "prefix": prefix,
                    "students": max(args.concurrency),
                    "password": password,
                    "batches": batches_spec,
                    "message": args.message,
                    "model_name": model,
                    "problem": load_fixture_problem(args.problem),
                },
                env,
            )
            server_log = tmp / "platform.log"
            guard_env = {"TUTOR_GUARD": "true"} if args.compare_guard else {}
            platform_server = stack.enter_context(
                PlatformServer(
                    {**env, **guard_env}, server_log, workers=args.web_workers, app=args.asgi_app
                )
            )
            say(f"platform at {platform_server.url} (log {server_log})")
            noguard_server = None
            if args.compare_guard:
                noguard_log = tmp / "platform-noguard.log"
                noguard_server = stack.enter_context(
                    PlatformServer(
                        {**env, "TUTOR_GUARD": "false"},
                        noguard_log,
                        workers=args.web_workers,
                        app=args.asgi_app,
                    )
                )
                say(f"platform with TUTOR_GUARD=false at {noguard_server.url} (log {noguard_log})")
            platform_cpus = cpu_list(args.platform_cpus)
            if platform_cpus:
                pin_tree(platform_server.process.pid, platform_cpus)
                if noguard_server is not None:
                    pin_tree(noguard_server.process.pid, platform_cpus)
                pin_tree(os.getpid(), platform_cpus)
                say(f"platform server and benchmark clients pinned to CPUs {sorted(platform_cpus)}")

            discarded: list[Batch] = []
            holds: dict[int, list[dict]] | None = {} if args.compare_guard else None
            batches = asyncio.run(
                measure(
                    args,
                    platform_server,
                    fixtures,
                    password,
                    api_base,
                    model,
                    env,
                    vllm_pid,
                    discarded,
                    noguard_server,
                    holds,
                )
            )

        # -- the figures
        say("")
        say(
            f"Results: max_tokens {args.max_tokens}, temperature 0, rounds per N "
            f"{ {n: rounds_for(args, n) for n in args.concurrency} }, "
            f"{os.cpu_count()} CPUs, database {'$DATABASE_URL' if external_db else 'SQLite'}; "
            f"{len(discarded)} batches discarded for machine noise and run again"
        )
        per_n: dict[str, dict] = {}
        for n in args.concurrency:
            plat_batches = [b for b in batches if b.kind == "platform" and b.concurrency == n]
            dire_batches = [b for b in batches if b.kind == "direct" and b.concurrency == n]
            plat, dire = summarize(plat_batches), summarize(dire_batches)
            intervals = ratio_intervals(plat_batches, dire_batches, args.bootstrap)
            comparison = print_table(n, plat, dire, intervals)
            prompt_tokens = {
                r.prompt_tokens for b in batches if b.concurrency == n for r in b.replies
            } - {None}
            if len(prompt_tokens) > 1:
                say(f"   WARNING: prompt token counts differ: {sorted(prompt_tokens)}")
            per_n[str(n)] = {"platform": plat, "direct": dire, "comparison": comparison}
            if args.compare_guard:
                per_n[str(n)].update(guard_comparison(n, batches, holds or {}, args.bootstrap))
        results = {
            "config": {
                key: (str(value) if isinstance(value, Path) else value)
                for key, value in vars(args).items()
            },
            "environment": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "database": "DATABASE_URL" if external_db else "sqlite",
                "redis": bool(os.environ.get("REDIS_URL")),
                "vllm": vllm_info,
                "model": model,
                "prompt": fixtures["prompt"],
            },
            "results": per_n,
            "batches": [batch_record(b) for b in batches],
            "discarded_noisy_batches": [batch_record(b) for b in discarded],
        }
        if args.json_out:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text(json.dumps(results, indent=2))
            say(f"\nJSON written to {args.json_out}")
    finally:
        if external_db and env is not None:
            with contextlib.suppress(SystemExit):
                run_fixtures("cleanup", {"prefix": prefix}, env)
        if args.keep_temp:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
