"""Costly answers against a real platform server: do they stall anybody else?

Starts the ASGI app under uvicorn (a subprocess, on a throwaway SQLite database unless
``$DATABASE_URL`` is set), logs in hostile and bystander students, and runs two phases of
``--seconds`` each:

* quiet: bystanders ping their sockets and submit ordinary (wrong) answers;
* attack: the same, while each hostile student floods its socket with answers that are cheap
  to type and very costly to evaluate (towers of powers and the like).

It prints, for each phase, the bystanders' ping round trips and answer verdict times (median,
p99, max), and for the attack the time each costly answer took to be refused and how it was
refused (``uncheckable`` at the time limit, or ``rate_limited``). Goals (issue 11): every
answer gets a verdict or a clear error within 1 s, and bystanders' pings stay under 100 ms.

    .venv/bin/python benchmarks/costly_answers.py --seconds 20 --hostile 5 --bystanders 20
    .venv/bin/python benchmarks/costly_answers.py --answers-per-minute 100000   # no rate limit

No model server is needed: answers and pings never reach it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_latency import (
    PlatformServer,
    _ws_connect_kwargs,
    login,
    percentile,
    platform_environment,
    run_fixtures,
)

COSTLY = [
    "9^9^9",
    "10**10**10",
    "(10^10)^(10^10)",
    "99999999999999999^99999999999999999",
    "$\\frac{9^{9^9}}{2}$",
    "2^2^2^2^2",
    "5!!!",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--hostile", type=int, default=5, help="students sending costly answers")
    parser.add_argument("--bystanders", type=int, default=20, help="students pinging and answering")
    parser.add_argument("--ping-every", type=float, default=0.2, help="seconds between pings")
    parser.add_argument("--answer-every", type=float, default=3.0, help="bystander answer period")
    parser.add_argument(
        "--answers-per-minute",
        type=int,
        default=None,
        help="TUTOR_RATE_ANSWERS_PER_MINUTE for the server (default: the platform's)",
    )
    parser.add_argument("--json-out", type=Path, default=None)
    return parser.parse_args(argv)


def environment(args: argparse.Namespace, tmp: Path) -> dict[str, str]:
    """The platform server's environment as chat_latency.py sets it; no model server (answers
    and pings never reach one), and no cap on answer attempts."""
    extra = ["TUTOR_MAX_ANSWER_ATTEMPTS=100000"]
    if args.answers_per_minute is not None:
        extra.append(f"TUTOR_RATE_ANSWERS_PER_MINUTE={args.answers_per_minute}")
    options = argparse.Namespace(max_tokens=16, platform_env=extra)
    return platform_environment(options, tmp, api_base="http://127.0.0.1:9/v1", model="none")


class Socket:
    """One student's socket, with request/response timing for pings and answers."""

    def __init__(self, base_url: str, cookie: str, session_id: int) -> None:
        self.url = base_url.replace("http", "ws", 1) + f"/ws/sessions/{session_id}/"
        self.cookie = cookie

    async def __aenter__(self) -> Socket:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.url,
            additional_headers={"Cookie": f"sessionid={self.cookie}", "Origin": "http://127.0.0.1"},
            **_ws_connect_kwargs(),
        )
        hello = json.loads(await self.ws.recv())
        assert hello["type"] == "session", hello
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def request(self, frame: dict, answers: set[str]) -> tuple[float, dict]:
        started = time.monotonic()
        await self.ws.send(json.dumps(frame))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply["type"] in answers:
                return time.monotonic() - started, reply


async def bystander(sock: Socket, args: argparse.Namespace, until: float, out: dict) -> None:
    next_answer = time.monotonic() + args.answer_every * secrets.randbelow(100) / 100
    while time.monotonic() < until:
        seconds, _ = await sock.request({"type": "ping"}, {"pong"})
        out["ping"].append(seconds)
        if time.monotonic() >= next_answer:
            next_answer += args.answer_every
            seconds, reply = await sock.request(
                {"type": "answer", "answer": "5"}, {"answer.result", "error"}
            )
            out["answer"].append(seconds)
            if reply["type"] == "error":
                out["errors"].append(reply["code"])
        await asyncio.sleep(args.ping_every)


async def hostile(sock: Socket, until: float, out: dict) -> None:
    for answer in itertools.cycle(COSTLY):
        if time.monotonic() >= until:
            return
        seconds, reply = await sock.request(
            {"type": "answer", "answer": answer}, {"answer.result", "error"}
        )
        out["costly"].append(seconds)
        out["costly_codes"].append(reply.get("code", reply["type"]))


async def phase(
    bystanders: list[Socket], attackers: list[Socket], args: argparse.Namespace
) -> dict:
    out: dict = {"ping": [], "answer": [], "errors": [], "costly": [], "costly_codes": []}
    until = time.monotonic() + args.seconds
    await asyncio.gather(
        *(bystander(s, args, until, out) for s in bystanders),
        *(hostile(s, until, out) for s in attackers),
    )
    return out


def summary(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "median_ms": percentile(ms, 0.5),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms) if ms else None,
    }


def row(label: str, values: list[float]) -> str:
    s = summary(values)
    if not s["n"]:
        return f"  {label:<34} none"
    return (
        f"  {label:<34} n={s['n']:<5} median {s['median_ms']:7.1f} ms   "
        f"p99 {s['p99_ms']:7.1f} ms   max {s['max_ms']:7.1f} ms"
    )


async def run(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> dict:
    prefix = f"costly{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    total = args.hostile + args.bystanders
    fixtures = run_fixtures(
        "setup",
        {
            "prefix": prefix,
            "students": total,
            "password": password,
            "batches": [{"key": "all", "size": total}],
            "message": "hello",
        },
        env,
    )
    with PlatformServer(env, tmp / "server.log") as server:
        cookies = [await login(server.url, u, password) for u in fixtures["usernames"]]
        sessions = fixtures["sessions"]["all"]
        sockets = [Socket(server.url, c, s) for c, s in zip(cookies, sessions, strict=True)]
        for sock in sockets:
            await sock.__aenter__()
        try:
            attackers, bystanders = sockets[: args.hostile], sockets[args.hostile :]
            print(f"quiet phase: {len(bystanders)} bystanders, {args.seconds:.0f} s", flush=True)
            quiet = await phase(bystanders, [], args)
            print(f"attack phase: + {len(attackers)} hostile students", flush=True)
            attack = await phase(bystanders, attackers, args)
        finally:
            for sock in sockets:
                await sock.__aexit__(None, None, None)
    codes: dict[str, int] = {}
    for code in attack["costly_codes"]:
        codes[code] = codes.get(code, 0) + 1
    print()
    print("quiet")
    print(row("bystander ping round trip", quiet["ping"]))
    print(row("bystander answer verdict", quiet["answer"]))
    print("attack")
    print(row("bystander ping round trip", attack["ping"]))
    print(row("bystander answer verdict", attack["answer"]))
    print(row("costly answer refused after", attack["costly"]))
    print(f"  costly answers by outcome: {codes}")
    print(f"  bystander errors: {attack['errors'] + quiet['errors'] or 'none'}")
    worst = max(attack["costly"] + attack["answer"], default=0.0)
    ping_p99 = summary(attack["ping"])["p99_ms"] or 0.0
    print(
        f"\ngoal: every answer answered within 1 s: {'met' if worst < 1.0 else 'MISSED'} "
        f"(slowest {worst * 1000:.0f} ms); bystander ping p99 under 100 ms during the attack: "
        f"{'met' if ping_p99 < 100 else 'MISSED'} ({ping_p99:.1f} ms)"
    )
    return {
        "quiet": {k: summary(quiet[k]) for k in ("ping", "answer")},
        "attack": {k: summary(attack[k]) for k in ("ping", "answer", "costly")},
        "costly_outcomes": codes,
        "bystander_errors": attack["errors"] + quiet["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="costly-") as folder:
        tmp = Path(folder)
        result = asyncio.run(run(args, environment(args, tmp), tmp))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
