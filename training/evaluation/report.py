"""Reading a finished evaluation report: its headline figures, and whether it stands for the
model (:func:`check_report`, which raises :class:`EvaluationIncomplete` when a task lost too
many items to the infrastructure, or measured none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.rollout import INFRA_KINDS, TRANSIENT_KINDS, InfrastructureFailure

from .metrics import Metric


class EvaluationIncomplete(InfrastructureFailure):
    """The run cannot stand for the model: a task lost too many items to the infrastructure,
    or measured none. ``report`` is the report as far as it went; ``problems`` one line per
    task at fault. ``transient`` when every task at fault failed for reasons that may pass
    (the server unreachable, timing out, answering 5xx, not serving the model yet)."""

    def __init__(self, problems: list[str], report: dict[str, Any], **counts: Any) -> None:
        super().__init__("evaluation incomplete: " + "; ".join(problems), **counts)
        self.problems = problems
        self.report = report


@dataclass(frozen=True)
class _TaskProblem:
    line: str
    transient: bool
    infra_failed: int
    attempted: int
    first_cause: str


def _first_error(items: list[dict[str, Any]]) -> str:
    return next((str(item["error"]) for item in items if item.get("error")), "")


def _all_transient(failed: list[dict[str, Any]]) -> bool:
    """Whether there are failures and every one may pass (see ``TRANSIENT_KINDS``)."""
    return bool(failed) and all(item.get("error_kind") in TRANSIENT_KINDS for item in failed)


def _task_problem(name: str, task: dict[str, Any], max_rate: float) -> _TaskProblem | None:
    """What is wrong with one task of a report, if anything (see :func:`check_report`)."""
    if task.get("error"):  # its data could not be loaded: nothing was attempted
        error = str(task["error"])
        return _TaskProblem(f"{name} measured no item ({error})", False, 0, 0, error)
    items = list(task.get("items") or [])
    attempted = int(task.get("attempted", len(items)))
    infra = [item for item in items if item.get("error_kind") in INFRA_KINDS]
    if infra and len(infra) > max_rate * attempted:
        cause = _first_error(infra)
        line = (
            f"{len(infra)} of {attempted} {name} items failed for infrastructure reasons "
            f"(at most {max_rate:.0%} may); first cause: {cause}"
        )
        return _TaskProblem(line, _all_transient(infra), len(infra), attempted, cause)
    if int(task.get("n") or 0) == 0:
        failed = [item for item in items if item.get("error")]
        cause = _first_error(failed)
        detail = f"; first cause: {cause}" if cause else ""
        line = f"{name} measured no item ({attempted} attempted{detail})"
        return _TaskProblem(line, _all_transient(failed), len(infra), attempted, cause)
    return None


def check_report(report: dict[str, Any], max_infra_failure_rate: float) -> None:
    """Raise :class:`EvaluationIncomplete` when a task of ``report`` lost more than
    ``max_infra_failure_rate`` of its items to infrastructure failures, or measured no item
    at all (its data missing, every item failed); each problem names the count and the first
    cause. A report that passes is left as it is."""
    problems = [
        problem
        for name, task in (report.get("tasks") or {}).items()
        if (problem := _task_problem(name, task, max_infra_failure_rate)) is not None
    ]
    if not problems:
        return
    raise EvaluationIncomplete(
        [p.line for p in problems],
        report,
        failed=sum(p.infra_failed for p in problems),
        total=sum(p.attempted for p in problems),
        first_cause=next((p.first_cause for p in problems if p.first_cause), ""),
        transient=all(p.transient for p in problems),
    )


def headline(report: dict[str, Any]) -> dict[str, Metric]:
    """The report's figures as one flat ``{name: Metric}`` dict, e.g. ``solve_gain``,
    ``leak_rate``, ``win_rate``, ``accuracy`` (metric names are unique across tasks), and
    ``judge_teacher_kappa`` when the report carries the LLM judge's agreement with teachers. A
    dict that is already flat is returned as is."""
    if "tasks" not in report:
        return {k: v for k, v in report.items() if isinstance(v, dict) and "value" in v}
    flat: dict[str, Metric] = {}
    for task in report["tasks"].values():
        for name, metric in (task.get("metrics") or {}).items():
            flat[name] = metric
    agreement = report.get("judge_agreement")  # added by the platform (tutor/retraining)
    if isinstance(agreement, dict) and isinstance(agreement.get("kappa"), dict):
        flat["judge_teacher_kappa"] = agreement["kappa"]
    return flat
