"""Multi-turn rollouts: the tutor policy talks with a simulated student over an
OpenAI-compatible API (vLLM), then the student writes k final solutions.

Both sides may live on one server under different model names (the tutor is typically a LoRA
adapter served by name, the student the base model). The tutor's prompt is built with
:func:`inference.prompts.build_tutor_messages`, exactly as in serving, and each tutor turn
keeps the exact ``messages`` it was sampled from and the raw completion (hidden ``<think>``
included), which is what the GRPO trainer trains on; the student only ever sees the visible
part. Endpoint failures end the rollout with ``Dialogue.error`` set instead of raising, and
``Dialogue.error_kind`` saying whether the cause was the infrastructure (:func:`failure_kind`):
callers count those (:func:`infrastructure_failures`) and stop or retry rather than score a
batch in which the server, not the tutor, decided the outcome.

The dialogue: the student opens (templated from the persona), then up to ``max_turns`` tutor
turns, each followed by a student reply except the last (the student's final solution follows
the dialogue anyway). It ends early when the student says it is done.

Where each part lives: :mod:`.types` holds the data (:class:`EndpointConfig`,
:class:`RolloutProblem`, :class:`Completion`, :class:`Dialogue`, :class:`DialogueTurn`);
:mod:`.chat` the call layer (:class:`ChatFn`, :func:`openai_chat`, :func:`derive_seed`);
:mod:`.failures` what counts as an endpoint failure, the failure kinds and the batch check
(:func:`failure_kind`, :class:`InfrastructureFailure`, :func:`check_rollouts`); :mod:`.dialogue`
one rollout (:func:`run_dialogue`, :func:`guarded_reply`, :func:`final_solutions`);
:mod:`.batch` a batch of them (:func:`run_rollouts`).
"""

from .batch import ProgressFn, StudentChooser, default_student, run_rollouts
from .chat import ChatFn, derive_seed, openai_chat
from .dialogue import final_solutions, guarded_reply, run_dialogue
from .failures import (
    ENDPOINT_ERRORS,
    INFRA_KINDS,
    MODEL_NOT_FOUND,
    RATE_LIMITED,
    SERVER_ERROR,
    TIMEOUT,
    TRANSIENT_KINDS,
    UNAUTHORIZED,
    UNREACHABLE,
    InfrastructureFailure,
    check_rollouts,
    failure_kind,
    infrastructure_failures,
)
from .types import Completion, Dialogue, DialogueTurn, EndpointConfig, Messages, RolloutProblem

__all__ = [
    "ENDPOINT_ERRORS",
    "INFRA_KINDS",
    "MODEL_NOT_FOUND",
    "RATE_LIMITED",
    "SERVER_ERROR",
    "TIMEOUT",
    "TRANSIENT_KINDS",
    "UNAUTHORIZED",
    "UNREACHABLE",
    "ChatFn",
    "Completion",
    "Dialogue",
    "DialogueTurn",
    "EndpointConfig",
    "InfrastructureFailure",
    "Messages",
    "ProgressFn",
    "RolloutProblem",
    "StudentChooser",
    "check_rollouts",
    "default_student",
    "derive_seed",
    "failure_kind",
    "final_solutions",
    "guarded_reply",
    "infrastructure_failures",
    "openai_chat",
    "run_dialogue",
    "run_rollouts",
]
