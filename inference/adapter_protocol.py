"""What to send to vLLM's adapter routes and what its answers mean, without doing any I/O.

Each operation is a generator of steps: it yields the :class:`Call` to send, receives the
server's :class:`Answer`, and returns the result (or raises an :class:`AdapterError`). The
transports in :mod:`inference.adapters` run these same steps over blocking HTTP (workers, views)
and over the event loop (the chat), so the two never drift apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from inference.adapter_errors import (
    AdapterError,
    AdapterRejected,
    LoRANotEnabled,
    PartialLoad,
    ReplicaLoads,
    RuntimeLoadingDisabled,
    ServerUnreachable,
    Unauthorized,
)
from inference.adapter_files import confined_path
from inference.client import split_base_urls

T = TypeVar("T")

API_KEY_ENV = "TUTOR_MODEL_API_KEY"
NO_KEY = "not-needed"  # the project's placeholder for "the server wants no key"


def auth_headers(api_key: str | None = None) -> dict[str, str]:
    """The ``Authorization`` header for ``api_key`` (default: ``$TUTOR_MODEL_API_KEY``)."""
    key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    if not key or key == NO_KEY:
        return {}
    return {"Authorization": f"Bearer {key}"}


def server_root(base_url: str) -> str:
    """``http://host:8001/v1`` -> ``http://host:8001``."""
    if "," in base_url.strip().strip(","):
        raise ValueError(f"one model server at a time, not a list: {base_url[:200]!r}")
    root = base_url.strip().strip(",").rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root


@dataclass(frozen=True)
class Call:
    """One request to send: ``method`` on ``root`` + ``route``, with a JSON ``body`` or none."""

    method: str
    root: str
    route: str
    body: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return f"{self.root}{self.route}"


@dataclass(frozen=True)
class Answer:
    """The server's status code and body, as text."""

    status: int
    text: str

    def message(self) -> str:
        try:
            body = json.loads(self.text)
        except ValueError:
            return self.text.strip()[:300]
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict) and error.get("message"):
                return str(error["message"])[:300]
            if body.get("detail"):
                return str(body["detail"])[:300]
            if body.get("message"):
                return str(body["message"])[:300]
        return self.text.strip()[:300]

    def is_missing_route(self) -> bool:
        """FastAPI's own 404/405 for a route the app does not have (``{"detail": ...}``)."""
        if self.status == 405:
            return True
        if self.status != 404:
            return False
        try:
            body = json.loads(self.text)
        except ValueError:
            return True
        return not (isinstance(body, dict) and isinstance(body.get("error"), dict))


DISABLED_HINT = (
    "the model server at {root} does not accept adapters at run time: start vLLM with "
    "--enable-lora and the environment variable VLLM_ALLOW_RUNTIME_LORA_UPDATING=True "
    "(python -m inference.launcher --enable-lora does both)"
)
NOT_ENABLED_HINT = (
    "the model server at {root} was started without LoRA support: start vLLM with "
    "--enable-lora (and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
)


def _check_auth(root: str, answer: Answer) -> None:
    if answer.status in (401, 403):
        raise Unauthorized(
            f"the model server at {root} refused the API key ({answer.status}): set "
            f"{API_KEY_ENV} to the key vLLM was started with (--api-key)"
        )


def _interpret_load(root: str, name: str, path: str, answer: Answer) -> bool:
    """True: loaded now; False: it was already loaded. Raises :class:`AdapterError`."""
    if answer.status == 200:
        return True
    _check_auth(root, answer)
    message = answer.message()
    lowered = message.lower()
    if answer.is_missing_route():
        raise RuntimeLoadingDisabled(DISABLED_HINT.format(root=root))
    if answer.status == 400 and "already been loaded" in lowered:
        return False
    if "lora is not enabled" in lowered or "enable-lora" in lowered:
        raise LoRANotEnabled(NOT_ENABLED_HINT.format(root=root))
    if "no adapter found" in lowered:
        raise AdapterError(
            f"vLLM found no adapter for {name!r} at {path} (the folder must exist on the model "
            f"server's machine and hold adapter_config.json): {message}"
        )
    if 400 <= answer.status < 500 or (answer.status == 500 and message):
        raise AdapterRejected(f"vLLM refused to load adapter {name!r} ({answer.status}): {message}")
    raise AdapterError(f"vLLM refused to load adapter {name!r} ({answer.status}): {message}")


def _interpret_unload(root: str, name: str, answer: Answer) -> bool:
    """True: unloaded; False: it was not loaded."""
    if answer.status == 200:
        return True
    _check_auth(root, answer)
    if answer.is_missing_route():
        raise RuntimeLoadingDisabled(DISABLED_HINT.format(root=root))
    if answer.status == 404:
        return False
    raise AdapterError(
        f"vLLM refused to unload adapter {name!r} ({answer.status}): {answer.message()}"
    )


def _model_ids(root: str, answer: Answer) -> list[str]:
    _check_auth(root, answer)
    if answer.status != 200:
        raise AdapterError(f"{root}/v1/models answered {answer.status}: {answer.message()}")
    try:
        return [str(card["id"]) for card in json.loads(answer.text).get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AdapterError(f"{root}/v1/models answered something that is not a model list") from exc


def unreachable(root: str, exc: Exception) -> ServerUnreachable:
    return ServerUnreachable(f"cannot reach the model server at {root}: {exc}")


# ---- the operations, as steps ---------------------------------------------------------------

Steps = Generator[Call, Answer, T]


def list_steps(base_url: str) -> Steps[list[str]]:
    """The names the server serves: its base model(s) and the adapters loaded."""
    root = server_root(base_url)
    return _model_ids(root, (yield Call("GET", root, "/v1/models")))


def load_steps(base_url: str, name: str, target: str) -> Steps[bool]:
    """Load ``target`` under ``name``; False when the server already had it."""
    root = server_root(base_url)
    body = {"lora_name": name, "lora_path": target}
    answer = yield Call("POST", root, "/v1/load_lora_adapter", body)
    return _interpret_load(root, name, target, answer)


def ensure_steps(base_url: str, name: str, target: str) -> Steps[bool]:
    """Load ``target`` under ``name`` unless the server lists it already."""
    if name in (yield from list_steps(base_url)):
        return False
    return (yield from load_steps(base_url, name, target))


def unload_steps(base_url: str, name: str) -> Steps[bool]:
    """Unload ``name``; False when it was not loaded."""
    root = server_root(base_url)
    answer = yield Call("POST", root, "/v1/unload_lora_adapter", {"lora_name": name})
    return _interpret_unload(root, name, answer)


def drive(steps: Steps[T], send: Callable[[Call], Answer]) -> T:
    """Run ``steps`` to their result, answering each call with ``send`` (blocking)."""
    try:
        call = next(steps)
        while True:
            call = steps.send(send(call))
    except StopIteration as stop:
        return stop.value


# ---- one operation on one replica or on several ---------------------------------------------


@dataclass(frozen=True)
class Plan:
    """``operation`` for adapter ``name`` on the replicas ``base_url`` lists, its path already
    confined (so that a path outside ``allowed_root`` is refused before any replica is asked)."""

    name: str
    target: str
    base_url: str | Sequence[str]
    urls: tuple[str, ...]
    operation: Callable[[str, str, str], Steps[bool]]

    @classmethod
    def make(
        cls,
        base_url: str | Sequence[str],
        name: str,
        path: str | os.PathLike[str],
        allowed_root: str | os.PathLike[str] | None,
        operation: Callable[[str, str, str], Steps[bool]],
    ) -> Plan:
        target = str(confined_path(path, allowed_root) if allowed_root is not None else path)
        return cls(name, target, base_url, split_base_urls(base_url), operation)

    @property
    def several(self) -> bool:
        return len(self.urls) > 1

    def steps(self, url: str | None = None) -> Steps[bool]:
        """The steps on ``url``, by default on the only replica."""
        if url is None:
            url = self.urls[0] if self.urls else str(self.base_url)
        return self.operation(url, self.name, self.target)

    def report(self, results: Sequence[bool | AdapterError]) -> ReplicaLoads:
        """What the steps did on each of :attr:`urls` (``results`` in the same order)."""
        report = ReplicaLoads(self.name)
        for url, result in zip(self.urls, results, strict=True):
            if isinstance(result, AdapterError):
                report.failed[url] = result
            elif result:
                report.loaded.append(url)
            else:
                report.already.append(url)
        return report


def all_or_raise(report: ReplicaLoads) -> bool:
    """True when any replica loaded the adapter now; :class:`PartialLoad` unless all serve it."""
    if report.failed:
        raise PartialLoad(report)
    return bool(report.loaded)
