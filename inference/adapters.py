"""Load LoRA adapters into a running vLLM server at run time (no restart, no Django).

vLLM serves an adapter under a name once ``POST /v1/load_lora_adapter`` with
``{"lora_name": NAME, "lora_path": DIR}`` succeeded; requests then pick it with
``"model": NAME``. That endpoint exists only when the server was started with ``--enable-lora``
and the environment variable ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``
(``python -m inference.launcher --enable-lora`` sets both). Runtime loads do not survive a
restart of vLLM: callers load again when a request for the adapter answers 404
(:func:`ensure_loaded` is idempotent). ``DIR`` is a path on the vLLM server's machine.

Every function takes the server's URL with or without ``/v1`` (``TUTOR_MODEL_BASE_URL``).
Synchronous functions are for workers and views, the ``a``-prefixed ones for the event loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # loading reads the weights: allow time


class AdapterError(Exception):
    """The server could not load or unload the adapter; the message says why."""


class RuntimeLoadingDisabled(AdapterError):
    """The server has no ``/v1/load_lora_adapter`` endpoint."""


class LoRANotEnabled(AdapterError):
    """The server was started without ``--enable-lora``."""


class ServerUnreachable(AdapterError):
    """Nothing answered at the server's address."""


def server_root(base_url: str) -> str:
    """``http://host:8001/v1`` -> ``http://host:8001``."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root


@dataclass(frozen=True)
class _Answer:
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


def _interpret_load(root: str, name: str, path: str, answer: _Answer) -> bool:
    """True: loaded now; False: it was already loaded. Raises :class:`AdapterError`."""
    if answer.status == 200:
        return True
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
    raise AdapterError(f"vLLM refused to load adapter {name!r} ({answer.status}): {message}")


def _interpret_unload(root: str, name: str, answer: _Answer) -> bool:
    """True: unloaded; False: it was not loaded."""
    if answer.status == 200:
        return True
    if answer.is_missing_route():
        raise RuntimeLoadingDisabled(DISABLED_HINT.format(root=root))
    if answer.status == 404:
        return False
    raise AdapterError(
        f"vLLM refused to unload adapter {name!r} ({answer.status}): {answer.message()}"
    )


def _model_ids(root: str, answer: _Answer) -> list[str]:
    if answer.status != 200:
        raise AdapterError(f"{root}/v1/models answered {answer.status}: {answer.message()}")
    try:
        return [str(card["id"]) for card in json.loads(answer.text).get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AdapterError(f"{root}/v1/models answered something that is not a model list") from exc


def _unreachable(root: str, exc: Exception) -> ServerUnreachable:
    return ServerUnreachable(f"cannot reach the model server at {root}: {exc}")


# ---- synchronous ------------------------------------------------------------------------------


def _request(method: str, url: str, root: str, http_timeout, **kwargs) -> _Answer:
    try:
        response = httpx.request(method, url, timeout=http_timeout, **kwargs)
    except httpx.HTTPError as exc:
        raise _unreachable(root, exc) from exc
    return _Answer(response.status_code, response.text)


def list_models(base_url: str, *, http_timeout=DEFAULT_TIMEOUT) -> list[str]:
    """The names the server serves: its base model(s) and the adapters loaded."""
    root = server_root(base_url)
    return _model_ids(root, _request("GET", f"{root}/v1/models", root, http_timeout))


def load_adapter(base_url: str, name: str, path: str, *, http_timeout=DEFAULT_TIMEOUT) -> bool:
    """Load ``path`` under ``name``; False when the server already had it."""
    root = server_root(base_url)
    answer = _request(
        "POST",
        f"{root}/v1/load_lora_adapter",
        root,
        http_timeout,
        json={"lora_name": name, "lora_path": str(path)},
    )
    return _interpret_load(root, name, str(path), answer)


def unload_adapter(base_url: str, name: str, *, http_timeout=DEFAULT_TIMEOUT) -> bool:
    """Unload ``name``; False when it was not loaded."""
    root = server_root(base_url)
    answer = _request(
        "POST", f"{root}/v1/unload_lora_adapter", root, http_timeout, json={"lora_name": name}
    )
    return _interpret_unload(root, name, answer)


def ensure_loaded(base_url: str, name: str, path: str, *, http_timeout=DEFAULT_TIMEOUT) -> bool:
    """Make sure the server serves ``name``; True when this call loaded it."""
    if name in list_models(base_url, http_timeout=http_timeout):
        return False
    return load_adapter(base_url, name, path, http_timeout=http_timeout)


# ---- asynchronous -----------------------------------------------------------------------------


async def _arequest(method: str, url: str, root: str, http_timeout, **kwargs) -> _Answer:
    try:
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise _unreachable(root, exc) from exc
    return _Answer(response.status_code, response.text)


async def alist_models(base_url: str, *, http_timeout=DEFAULT_TIMEOUT) -> list[str]:
    root = server_root(base_url)
    return _model_ids(root, await _arequest("GET", f"{root}/v1/models", root, http_timeout))


async def aload_adapter(
    base_url: str, name: str, path: str, *, http_timeout=DEFAULT_TIMEOUT
) -> bool:
    root = server_root(base_url)
    answer = await _arequest(
        "POST",
        f"{root}/v1/load_lora_adapter",
        root,
        http_timeout,
        json={"lora_name": name, "lora_path": str(path)},
    )
    return _interpret_load(root, name, str(path), answer)


async def aensure_loaded(
    base_url: str, name: str, path: str, *, http_timeout=DEFAULT_TIMEOUT
) -> bool:
    if name in await alist_models(base_url, http_timeout=http_timeout):
        return False
    return await aload_adapter(base_url, name, path, http_timeout=http_timeout)
