"""Evaluate a tutor on an OpenAI-compatible endpoint and write a JSON report.

    python -m training.evaluate --endpoint http://127.0.0.1:8001/v1 --model tutor-v3 \\
        --student-model base --tasks interactive,scaffolding,solving --limit 20 \\
        --reward-model var/reward_models/minilm-mathdial --out var/eval/tutor-v3.json \\
        [--compare var/eval/tutor-v2.json]

A progress bar goes to stderr, a summary table to stdout. With ``--compare ACTIVE_REPORT``
the promotion gate runs against that report; its verdict is printed and stored in the report
under ``gate``. A task that lost more than ``--max-infra-failures`` of its items to the model
server (unreachable, timing out, 5xx, model not served), or measured none, stops the run: the
report is still written, with the reason under ``error``. ``--api-key`` (default: the
environment's ``TUTOR_MODEL_API_KEY``) is sent to the server as a bearer token. Exit status: 0;
1 when no task measured a single item; 3 when the gate fails; 4 when the run stopped for
infrastructure failures. See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from inference.judge import JudgeConfig
from training import rollout
from training.dataset import read_dataset
from training.evaluation import (
    TASKS,
    EvaluationConfig,
    EvaluationIncomplete,
    list_models,
    run_evaluation,
)
from training.evaluation.gate import promotion_gate
from training.rollout import ChatFn

DEFAULT_MAX_INFRA_FAILURES = 0.1
INCOMPLETE = 4  # exit status: the run stopped for infrastructure failures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = EvaluationConfig(endpoint="-", model="-")
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate a tutor model: interactive tutoring, scaffolding, solving.",
    )
    parser.add_argument("--endpoint", required=True, help="tutor server base URL incl. /v1")
    parser.add_argument("--model", required=True, help="served tutor model or adapter name")
    parser.add_argument("--student-endpoint", help="default: --endpoint")
    parser.add_argument(
        "--student-model", help="default: the tutor adapter's base model as the server lists it"
    )
    parser.add_argument("--tasks", default=",".join(defaults.tasks), help=f"of {','.join(TASKS)}")
    parser.add_argument("--limit", type=int, default=defaults.limit, help="items per task")
    parser.add_argument("--reward-model", help="pedagogy reward model folder")
    parser.add_argument("--max-turns", type=int, default=defaults.max_turns)
    parser.add_argument("--k", type=int, default=defaults.k, help="student solutions per item")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--max-tokens", type=int, default=defaults.max_tokens)
    parser.add_argument("--bootstrap-samples", type=int, default=defaults.bootstrap_samples)
    parser.add_argument("--mathdial", help="MathDial JSONL (default: shared data)")
    parser.add_argument("--mathtutorbench", nargs="+", help="bridge JSON files (default: all)")
    parser.add_argument(
        "--problems", help="our own problems to mix in: a dataset file (training/dataset.py)"
    )
    parser.add_argument("--transcripts", action="store_true", help="keep dialogue transcripts")
    parser.add_argument(
        "--guard-retries",
        type=int,
        default=defaults.guard_retries,
        help="the answer guard's retries per tutor turn (as on the chat socket)",
    )
    parser.add_argument(
        "--no-guard", action="store_true", help="measure tutor turns without the answer guard"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("TUTOR_MODEL_API_KEY") or None,
        help="bearer token for the server(s) (default: $TUTOR_MODEL_API_KEY)",
    )
    parser.add_argument(
        "--max-infra-failures",
        type=float,
        default=DEFAULT_MAX_INFRA_FAILURES,
        help="stop when a task loses more than this share of its items to the model server "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="never stop for infrastructure failures; only record them on the items",
    )
    parser.add_argument(
        "--judge-endpoint",
        default=os.environ.get("TUTOR_JUDGE_BASE_URL") or None,
        help="LLM judge server base URL incl. /v1 (default: $TUTOR_JUDGE_BASE_URL; none: off)",
    )
    parser.add_argument("--judge-model", default=os.environ.get("TUTOR_JUDGE_MODEL") or None)
    parser.add_argument("--judge-timeout", type=float, default=30.0)
    parser.add_argument("--judge-max-tokens", type=int, default=256)
    parser.add_argument("--compare", help="the active version's report: run the promotion gate")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", required=True, help="where to write the JSON report")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> EvaluationConfig:
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    return EvaluationConfig(
        endpoint=args.endpoint,
        model=args.model,
        student_endpoint=args.student_endpoint,
        student_model=args.student_model,
        tasks=tasks,
        limit=args.limit,
        max_turns=args.max_turns,
        k=args.k,
        seed=args.seed,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        reward_model=args.reward_model,
        mathdial_path=args.mathdial,
        mathtutorbench_paths=tuple(args.mathtutorbench) if args.mathtutorbench else None,
        extra_problems=tuple(read_dataset(args.problems).problems) if args.problems else (),
        bootstrap_samples=args.bootstrap_samples,
        transcripts=args.transcripts,
        max_infra_failure_rate=None if args.keep_going else args.max_infra_failures,
        api_key=args.api_key,
        judge=judge_from_args(args),
        guard_retries=None if args.no_guard else args.guard_retries,
    )


def judge_from_args(args: argparse.Namespace) -> JudgeConfig | None:
    """The LLM judge's settings, when ``--judge-endpoint`` is given (its model defaults to
    the tutor's base model name on that server, its key to ``$TUTOR_JUDGE_API_KEY``)."""
    if not args.judge_endpoint:
        return None
    return JudgeConfig(
        base_url=args.judge_endpoint,
        model=args.judge_model or args.student_model or args.model,
        api_key=os.environ.get("TUTOR_JUDGE_API_KEY") or "not-needed",
        timeout=args.judge_timeout,
        max_tokens=args.judge_max_tokens,
    )


def _cell(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_summary(report: dict[str, Any]) -> str:
    """A plain-text table: task, metric, value, 95% CI, n."""
    rows = [("task", "metric", "value", "95% CI", "n")]
    for task, result in report["tasks"].items():
        if result.get("error"):
            rows.append((task, "error", result["error"][:60], "", "0"))
        for name, m in result["metrics"].items():
            ci = f"[{_cell(m['ci_low'])}, {_cell(m['ci_high'])}]"
            rows.append((task, name, _cell(m["value"]), ci, str(m["n"])))
        if result.get("failed"):
            rows.append((task, "failed items", str(result["failed"]), "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(
        f"{report['items']} items in {report['wall_s']:.1f} s "
        f"({report['items_per_minute']:.1f} items/min)"
    )
    return "\n".join(line.rstrip() for line in lines)


def main(
    argv: list[str] | None = None,
    *,
    chat: ChatFn | None = None,
    scorer: Any = None,
    lister: Any = list_models,
) -> int:
    args = parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from exc
    active = None
    if args.compare:
        active = json.loads(Path(args.compare).read_text(encoding="utf-8"))
    bars: list[tqdm] = []  # made on the first item, when the total is known

    def progress(done: int, total: int, task: str) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="item", file=sys.stderr, disable=args.no_progress))
        bar = bars[0]
        bar.set_description(task, refresh=False)
        bar.update(done - bar.n)

    incomplete: EvaluationIncomplete | None = None
    try:
        report = run_evaluation(
            config,
            progress,
            chat=chat or rollout.openai_chat,  # looked up now, so tests can monkeypatch it
            scorer=scorer,
            lister=lister,
        )
    except EvaluationIncomplete as exc:
        incomplete, report = exc, {**exc.report, "error": str(exc)}
    finally:
        for bar in bars:
            bar.close()
    status = 0
    if incomplete is None and args.compare:
        verdict = promotion_gate(report, active)
        report["gate"] = {"against": args.compare, **verdict.to_dict()}
        if not verdict.passed:
            status = 3
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(format_summary(report))
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    if "gate" in report:
        gate = report["gate"]
        print(f"promotion gate: {'PASS' if gate['passed'] else 'FAIL'}")
        for reason in gate["reasons"]:
            print(f"  - {reason}")
    print(f"report: {out}")
    if incomplete is not None:
        print(f"error: {incomplete}", file=sys.stderr)
        return INCOMPLETE
    if status == 0 and not any(t["n"] for t in report["tasks"].values()):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
