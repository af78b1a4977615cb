"""Evaluation harness: is a retrained tutor a better teacher than the active one?

Runs against any OpenAI-compatible endpoint (our vLLM server with an adapter served by name,
or another server). Three tasks, one module each: interactive tutoring of simulated students
(:mod:`.interactive`), scaffolding quality against human teacher turns (MathTutorBench,
:mod:`.scaffolding`), and the tutor's own problem solving (:mod:`.solving`); what they share
is in :mod:`.common`, the harness that runs them in :mod:`.harness`. Every figure carries a
bootstrap confidence interval and its number of items (:mod:`.metrics`); :mod:`.report`
reads a finished report (its headline, whether it stands for the model), and :mod:`.gate`
decides whether a candidate may be promoted over the active version.

Plain Python (no Django): ``run_evaluation(config)`` returns a JSON-serialisable report;
``python -m training.evaluate`` is the command line. See docs/evaluation.md.

An item whose endpoint call failed is left out of the figures. When the failures are the
infrastructure's (the model server unreachable, timing out, answering 5xx or not serving the
model) and ``config.max_infra_failure_rate`` is set, too many of them stop the run with
:class:`EvaluationIncomplete` instead of a report whose figures rest on a few items, or none.
"""

from .common import Scorer
from .harness import (
    TASKS,
    EvaluationConfig,
    list_models,
    resolve_student_model,
    run_evaluation,
    run_evaluation_async,
)
from .metrics import Metric
from .report import EvaluationIncomplete, check_report, headline

__all__ = [
    "TASKS",
    "EvaluationConfig",
    "EvaluationIncomplete",
    "Metric",
    "Scorer",
    "check_report",
    "headline",
    "list_models",
    "resolve_student_model",
    "run_evaluation",
    "run_evaluation_async",
]
