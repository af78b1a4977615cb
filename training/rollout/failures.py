"""Endpoint failures: which exceptions count as the endpoint failing
(:data:`ENDPOINT_ERRORS`), the infrastructure failure kinds and :func:`failure_kind`, and the
check that too many rollouts of a batch failed for infrastructure reasons
(:func:`infrastructure_failures`, :func:`check_rollouts`, :class:`InfrastructureFailure`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import httpx
import openai

from inference.client import (
    HTTP_ERRORS,
    HTTP_TIMEOUTS,
    HTTP_TRANSPORT_ERRORS,
    ModelNotFound,
    ModelServerError,
    ModelUnavailable,
)

from .types import Dialogue

# What counts as "the endpoint failed" (recorded on the dialogue) rather than a bug (raised).
ENDPOINT_ERRORS: tuple[type[BaseException], ...] = (
    ModelServerError,
    openai.APIError,
    *HTTP_ERRORS,
    TimeoutError,
    ConnectionError,
)

# Why an endpoint call failed, when the cause is the infrastructure rather than the request:
# these make a rollout or an evaluation item say nothing about the tutor.
UNREACHABLE = "unreachable"  # connection refused or dropped, DNS
TIMEOUT = "timeout"
SERVER_ERROR = "server_error"  # 5xx, a broken or empty answer
MODEL_NOT_FOUND = "model_not_found"  # 404: the model or adapter is not served (vLLM restarted)
UNAUTHORIZED = "unauthorized"  # 401/403: a missing or wrong API key
RATE_LIMITED = "rate_limited"  # 429
INFRA_KINDS = frozenset(
    {UNREACHABLE, TIMEOUT, SERVER_ERROR, MODEL_NOT_FOUND, UNAUTHORIZED, RATE_LIMITED}
)
# Worth trying again later: the server may come back (or reload the adapter). A wrong API key
# does not fix itself.
TRANSIENT_KINDS = INFRA_KINDS - {UNAUTHORIZED}


def _status_kind(status: int | None) -> str | None:
    if status is None:
        return None
    if status in (401, 403):
        return UNAUTHORIZED
    if status == 404:
        return MODEL_NOT_FOUND
    if status == 408:
        return TIMEOUT
    if status == 429:
        return RATE_LIMITED
    if status >= 500:
        return SERVER_ERROR
    return None  # another 4xx: the request itself was refused (e.g. too long a prompt)


def failure_kind(exc: BaseException) -> str | None:
    """The infrastructure cause of an endpoint failure (one of :data:`INFRA_KINDS`), or None
    when the server refused the request itself (a 400) or ``exc`` is not an endpoint failure."""
    if isinstance(exc, ModelServerError) and exc.status_code is not None:
        return _status_kind(exc.status_code)
    if isinstance(exc, ModelNotFound):
        return MODEL_NOT_FOUND
    cause = exc.__cause__
    if isinstance(exc, ModelServerError) and cause is not None:
        return failure_kind(cause) or (
            UNREACHABLE if isinstance(exc, ModelUnavailable) else SERVER_ERROR
        )
    if isinstance(exc, ModelUnavailable):
        return UNREACHABLE
    if isinstance(exc, ModelServerError):
        return SERVER_ERROR
    if isinstance(exc, (openai.APITimeoutError, *HTTP_TIMEOUTS, TimeoutError)):
        return TIMEOUT
    if isinstance(exc, (openai.APIConnectionError, *HTTP_TRANSPORT_ERRORS, ConnectionError)):
        return UNREACHABLE
    if isinstance(exc, openai.APIStatusError):
        return _status_kind(exc.status_code)
    if isinstance(exc, httpx.HTTPStatusError):
        return _status_kind(exc.response.status_code)
    if isinstance(exc, (openai.APIError, *HTTP_ERRORS)):
        return SERVER_ERROR
    return None


class InfrastructureFailure(RuntimeError):
    """Too many calls failed for infrastructure reasons for the results to mean anything.
    ``failed`` of ``total`` failed; ``first_cause`` is the first such error; ``transient``
    says whether trying again later may help (the server was unreachable, not misconfigured)."""

    def __init__(
        self, message: str, *, failed: int, total: int, first_cause: str, transient: bool
    ) -> None:
        super().__init__(message)
        self.failed = failed
        self.total = total
        self.first_cause = first_cause
        self.transient = transient


def infrastructure_failures(dialogues: Iterable[Dialogue]) -> list[Dialogue]:
    """The dialogues that failed for infrastructure reasons, in order."""
    return [d for d in dialogues if d.failed and d.error_kind in INFRA_KINDS]


def check_rollouts(
    dialogues: Sequence[Dialogue], max_failed_rate: float, *, where: str = ""
) -> InfrastructureFailure | None:
    """An :class:`InfrastructureFailure` to raise when more than ``max_failed_rate`` of
    ``dialogues`` failed for infrastructure reasons, else None. ``where`` (e.g. "step 3")
    goes into the message."""
    failed = infrastructure_failures(dialogues)
    total = len(dialogues)
    if not failed or len(failed) <= max_failed_rate * total:
        return None
    first = failed[0]
    place = f" in {where}" if where else ""
    if len(failed) == total:
        summary = f"every rollout failed for infrastructure reasons ({total} of {total}{place})"
    else:
        summary = (
            f"{len(failed)} of {total} rollouts{place} failed for infrastructure reasons "
            f"(at most {max_failed_rate:.0%} may)"
        )
    return InfrastructureFailure(
        f"{summary}; first cause: {first.error}",
        failed=len(failed),
        total=total,
        first_cause=str(first.error),
        transient=all(d.error_kind in TRANSIENT_KINDS for d in failed),
    )
