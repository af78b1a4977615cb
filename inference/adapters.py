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
The load functions (:func:`load_adapter`, :func:`ensure_loaded` and their ``a`` forms) also
take several replicas, comma-separated: they load on every one at the same time, and raise
:class:`PartialLoad` (whose ``report`` names the replicas that failed, and why) unless all
succeeded; :func:`ensure_loaded_everywhere` returns that report instead of raising.

``api_key`` is sent as ``Authorization: Bearer`` (a server started with vLLM's ``--api-key``
refuses the adapter routes without it); when not given, the environment's
``TUTOR_MODEL_API_KEY`` is used. ``allowed_root``, when given, confines the adapter folder to
that directory (:func:`confined_path`): a path that leaves it (``..``, an absolute path
elsewhere, a symlink pointing out) is refused before anything is sent. :func:`validate_adapter`
checks a folder's ``adapter_config.json`` and the header of its safetensors file, so that a
truncated or oversized adapter is refused before it is promoted rather than when vLLM fails to
load it for a student.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from inference.client import split_base_urls

DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # loading reads the weights: allow time


class AdapterError(Exception):
    """The server could not load or unload the adapter; the message says why."""


class RuntimeLoadingDisabled(AdapterError):
    """The server has no ``/v1/load_lora_adapter`` endpoint."""


class LoRANotEnabled(AdapterError):
    """The server was started without ``--enable-lora``."""


class ServerUnreachable(AdapterError):
    """Nothing answered at the server's address."""


class Unauthorized(AdapterError):
    """The server refused the API key (or wanted one)."""


class AdapterPathError(AdapterError):
    """The adapter folder is outside the directory adapters may be loaded from."""


class InvalidAdapter(AdapterError):
    """The adapter folder is not a LoRA adapter the server can load."""


@dataclass
class ReplicaLoads:
    """What loading one adapter on several replicas did, per replica URL."""

    name: str
    loaded: list[str] = field(default_factory=list)  # loaded by this call
    already: list[str] = field(default_factory=list)  # served it before
    failed: dict[str, AdapterError] = field(default_factory=dict)

    @property
    def replicas(self) -> int:
        return len(self.loaded) + len(self.already) + len(self.failed)

    @property
    def serving(self) -> list[str]:
        return self.loaded + self.already

    def summary(self) -> str:
        """``"2 of 3 replicas serve tutor-v4; not http://b:8001/v1: cannot reach ..."``."""
        text = f"{len(self.serving)} of {self.replicas} replicas serve {self.name}"
        if self.failed:
            text += "; not " + "; ".join(f"{url}: {exc}" for url, exc in self.failed.items())
        return text


class PartialLoad(AdapterError):
    """Some replicas did not load the adapter; ``report`` (:class:`ReplicaLoads`) says which."""

    def __init__(self, report: ReplicaLoads) -> None:
        super().__init__(report.summary())
        self.report = report


API_KEY_ENV = "TUTOR_MODEL_API_KEY"
NO_KEY = "not-needed"  # the project's placeholder for "the server wants no key"


def auth_headers(api_key: str | None = None) -> dict[str, str]:
    """The ``Authorization`` header for ``api_key`` (default: ``$TUTOR_MODEL_API_KEY``)."""
    key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    if not key or key == NO_KEY:
        return {}
    return {"Authorization": f"Bearer {key}"}


# ---- where adapters may come from, and what they must hold ------------------------------------


def confined_path(path: str | os.PathLike[str], allowed_root: str | os.PathLike[str]) -> Path:
    """``path`` (relative ones are taken from ``allowed_root``) as an absolute path without
    ``..``, refused with :class:`AdapterPathError` unless it lies strictly inside
    ``allowed_root``, both as written and once symlinks are resolved."""
    try:
        root = Path(os.path.abspath(allowed_root))
        candidate = Path(os.path.normpath(root / Path(path)))
        real_root, real = root.resolve(), candidate.resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # NUL bytes, symlink loops
        raise AdapterPathError(f"adapter path {str(path)[:200]!r} is not usable: {exc}") from exc
    inside = root in candidate.parents and real_root in real.parents
    if not str(path).strip() or not inside:
        raise AdapterPathError(
            f"adapter path {str(path)[:200]!r} is outside the adapter directory {root}"
        )
    return candidate


CONFIG_NAME = "adapter_config.json"
SAFETENSORS_NAME = "adapter_model.safetensors"
BIN_NAME = "adapter_model.bin"
MAX_CONFIG_BYTES = 1_000_000
MAX_HEADER_BYTES = 100_000_000  # what the safetensors library itself accepts
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


@dataclass(frozen=True)
class AdapterInfo:
    """What :func:`validate_adapter` found."""

    path: Path
    rank: int
    weights: str  # the weights file's name
    tensors: int | None  # None for a .bin file (not inspected)


def _adapter_rank(config: dict, where: Path) -> int:
    rank = config.get("r")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise InvalidAdapter(f"{where} has no valid LoRA rank 'r' (found {rank!r})")
    pattern = config.get("rank_pattern") or {}
    if isinstance(pattern, dict):
        ranks = [r for r in pattern.values() if isinstance(r, int) and not isinstance(r, bool)]
        rank = max([rank, *ranks])
    return rank


def read_adapter_config(folder: Path) -> dict:
    path = folder / CONFIG_NAME
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise InvalidAdapter(f"{path} is too large to be an adapter config")
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidAdapter(f"{folder} holds no {CONFIG_NAME}") from exc
    except (OSError, ValueError) as exc:
        raise InvalidAdapter(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise InvalidAdapter(f"{path} is not a JSON object")
    peft_type = config.get("peft_type")
    if peft_type is not None and str(peft_type).upper() != "LORA":
        raise InvalidAdapter(f"{path} describes a {peft_type} adapter, not LoRA")
    return config


def check_safetensors(path: Path) -> int:
    """The number of tensors in a safetensors file, after checking that its header is
    well-formed and that the data it describes is exactly what the file holds (a truncated
    copy fails here). Reads the header only."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise InvalidAdapter(f"{path} is truncated ({size} bytes)")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES or 8 + length > size:
                raise InvalidAdapter(
                    f"{path} is truncated or corrupt: its header claims {length} bytes, the "
                    f"file has {size}"
                )
            header = json.loads(handle.read(length).decode("utf-8"))
    except OSError as exc:
        raise InvalidAdapter(f"{path} is not readable: {exc}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidAdapter(f"{path} has a corrupt header: {exc}") from exc
    if not isinstance(header, dict):
        raise InvalidAdapter(f"{path} has a corrupt header (not a JSON object)")
    end = 0
    tensors = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        end = max(end, _tensor_end(path, name, entry))
        tensors += 1
    if not tensors:
        raise InvalidAdapter(f"{path} holds no tensors")
    if 8 + length + end != size:
        state = "truncated" if 8 + length + end > size else "longer than its header says"
        raise InvalidAdapter(
            f"{path} is {state}: its tensors need {8 + length + end} bytes, the file has {size}"
        )
    return tensors


def _tensor_end(path: Path, name: str, entry: object) -> int:
    """Where one tensor's data ends, after checking its entry."""
    try:
        assert isinstance(entry, dict)
        begin, end = (int(x) for x in entry["data_offsets"])
        shape = [int(x) for x in entry["shape"]]
        width = DTYPE_BYTES[entry["dtype"]]
        assert 0 <= begin <= end and all(x >= 0 for x in shape)
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        raise InvalidAdapter(f"{path}: tensor {name[:100]!r} has a corrupt entry") from exc
    if math.prod(shape) * width != end - begin:
        raise InvalidAdapter(f"{path}: tensor {name[:100]!r} does not match its shape")
    return end


def validate_adapter(
    path: str | os.PathLike[str],
    *,
    allowed_root: str | os.PathLike[str] | None = None,
    max_rank: int | None = None,
) -> AdapterInfo:
    """Check that ``path`` is a LoRA adapter the server can load: inside ``allowed_root``
    (when given), an ``adapter_config.json`` with a rank of at most ``max_rank`` (the server's
    ``--max-lora-rank``), and weights: a safetensors file whose header matches its size (see
    :func:`check_safetensors`), or a ``.bin`` file. Raises :class:`AdapterError` subclasses
    with a message for the admin."""
    folder = confined_path(path, allowed_root) if allowed_root is not None else Path(path)
    if not folder.is_dir():
        raise InvalidAdapter(f"adapter folder {folder} does not exist")
    rank = _adapter_rank(read_adapter_config(folder), folder / CONFIG_NAME)
    if max_rank is not None and rank > max_rank:
        raise InvalidAdapter(
            f"{folder} has LoRA rank {rank}, above the model server's maximum of {max_rank} "
            "(vLLM --max-lora-rank)"
        )
    safetensors = folder / SAFETENSORS_NAME
    if safetensors.exists():
        return AdapterInfo(folder, rank, SAFETENSORS_NAME, check_safetensors(safetensors))
    binary = folder / BIN_NAME
    if binary.is_file() and binary.stat().st_size > 0:
        return AdapterInfo(folder, rank, BIN_NAME, None)
    raise InvalidAdapter(f"{folder} holds no adapter weights ({SAFETENSORS_NAME})")


def server_root(base_url: str) -> str:
    """``http://host:8001/v1`` -> ``http://host:8001``."""
    if "," in base_url.strip().strip(","):
        raise ValueError(f"one model server at a time, not a list: {base_url[:200]!r}")
    root = base_url.strip().strip(",").rstrip("/")
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


def _check_auth(root: str, answer: _Answer) -> None:
    if answer.status in (401, 403):
        raise Unauthorized(
            f"the model server at {root} refused the API key ({answer.status}): set "
            f"{API_KEY_ENV} to the key vLLM was started with (--api-key)"
        )


def _interpret_load(root: str, name: str, path: str, answer: _Answer) -> bool:
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
    raise AdapterError(f"vLLM refused to load adapter {name!r} ({answer.status}): {message}")


def _interpret_unload(root: str, name: str, answer: _Answer) -> bool:
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


def _model_ids(root: str, answer: _Answer) -> list[str]:
    _check_auth(root, answer)
    if answer.status != 200:
        raise AdapterError(f"{root}/v1/models answered {answer.status}: {answer.message()}")
    try:
        return [str(card["id"]) for card in json.loads(answer.text).get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AdapterError(f"{root}/v1/models answered something that is not a model list") from exc


def _unreachable(root: str, exc: Exception) -> ServerUnreachable:
    return ServerUnreachable(f"cannot reach the model server at {root}: {exc}")


# ---- synchronous ------------------------------------------------------------------------------


def _target(path: str | os.PathLike[str], allowed_root) -> str:
    return str(confined_path(path, allowed_root) if allowed_root is not None else path)


def _request(method: str, url: str, root: str, http_timeout, api_key, **kwargs) -> _Answer:
    try:
        response = httpx.request(
            method, url, timeout=http_timeout, headers=auth_headers(api_key), **kwargs
        )
    except httpx.HTTPError as exc:
        raise _unreachable(root, exc) from exc
    return _Answer(response.status_code, response.text)


def list_models(
    base_url: str, *, http_timeout=DEFAULT_TIMEOUT, api_key: str | None = None
) -> list[str]:
    """The names the server serves: its base model(s) and the adapters loaded."""
    root = server_root(base_url)
    return _model_ids(root, _request("GET", f"{root}/v1/models", root, http_timeout, api_key))


def load_adapter(
    base_url: str,
    name: str,
    path: str,
    *,
    http_timeout=DEFAULT_TIMEOUT,
    api_key: str | None = None,
    allowed_root: str | os.PathLike[str] | None = None,
) -> bool:
    """Load ``path`` under ``name``; False when the server already had it. Several replicas
    (comma-separated): on each; True when any loaded it now, :class:`PartialLoad` unless all
    serve it."""
    target = _target(path, allowed_root)
    urls = split_base_urls(base_url)
    if len(urls) > 1:
        return _all_or_raise(
            _on_every_replica(urls, name, _load_one, target, http_timeout, api_key)
        )
    return _load_one(urls[0] if urls else base_url, name, target, http_timeout, api_key)


def _load_one(base_url: str, name: str, target: str, http_timeout, api_key) -> bool:
    root = server_root(base_url)
    answer = _request(
        "POST",
        f"{root}/v1/load_lora_adapter",
        root,
        http_timeout,
        api_key,
        json={"lora_name": name, "lora_path": target},
    )
    return _interpret_load(root, name, target, answer)


def _ensure_one(base_url: str, name: str, target: str, http_timeout, api_key) -> bool:
    if name in list_models(base_url, http_timeout=http_timeout, api_key=api_key):
        return False
    return _load_one(base_url, name, target, http_timeout, api_key)


def _on_every_replica(urls, name, action, target, http_timeout, api_key) -> ReplicaLoads:
    """``action`` on every replica at once (threads): a slow or dead replica costs its own
    timeout, not the others'."""

    def attempt(url: str) -> bool | AdapterError:
        try:
            return action(url, name, target, http_timeout, api_key)
        except AdapterError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        results = list(pool.map(attempt, urls))
    return _report(name, urls, results)


def _report(name: str, urls, results) -> ReplicaLoads:
    report = ReplicaLoads(name)
    for url, result in zip(urls, results, strict=True):
        if isinstance(result, AdapterError):
            report.failed[url] = result
        elif result:
            report.loaded.append(url)
        else:
            report.already.append(url)
    return report


def _all_or_raise(report: ReplicaLoads) -> bool:
    if report.failed:
        raise PartialLoad(report)
    return bool(report.loaded)


def unload_adapter(
    base_url: str, name: str, *, http_timeout=DEFAULT_TIMEOUT, api_key: str | None = None
) -> bool:
    """Unload ``name``; False when it was not loaded."""
    root = server_root(base_url)
    answer = _request(
        "POST",
        f"{root}/v1/unload_lora_adapter",
        root,
        http_timeout,
        api_key,
        json={"lora_name": name},
    )
    return _interpret_unload(root, name, answer)


def ensure_loaded(
    base_url: str,
    name: str,
    path: str,
    *,
    http_timeout=DEFAULT_TIMEOUT,
    api_key: str | None = None,
    allowed_root: str | os.PathLike[str] | None = None,
) -> bool:
    """Make sure the server serves ``name``; True when this call loaded it. A path outside
    ``allowed_root`` is refused before the server is asked anything. Several replicas
    (comma-separated): on each at once; True when any loaded it now, :class:`PartialLoad`
    unless all serve it."""
    target = _target(path, allowed_root)
    urls = split_base_urls(base_url)
    if len(urls) > 1:
        return _all_or_raise(
            _on_every_replica(urls, name, _ensure_one, target, http_timeout, api_key)
        )
    return _ensure_one(urls[0] if urls else base_url, name, target, http_timeout, api_key)


def ensure_loaded_everywhere(
    base_url: str | Sequence[str],
    name: str,
    path: str,
    *,
    http_timeout=DEFAULT_TIMEOUT,
    api_key: str | None = None,
    allowed_root: str | os.PathLike[str] | None = None,
) -> ReplicaLoads:
    """:func:`ensure_loaded` on every replica ``base_url`` lists, at the same time; what each
    did, failures included (only a path outside ``allowed_root`` raises)."""
    target = _target(path, allowed_root)
    urls = split_base_urls(base_url)
    return _on_every_replica(urls, name, _ensure_one, target, http_timeout, api_key)


# ---- asynchronous -----------------------------------------------------------------------------


async def _arequest(method: str, url: str, root: str, http_timeout, api_key, **kwargs) -> _Answer:
    try:
        async with httpx.AsyncClient(timeout=http_timeout, headers=auth_headers(api_key)) as client:
            response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise _unreachable(root, exc) from exc
    return _Answer(response.status_code, response.text)


async def alist_models(
    base_url: str, *, http_timeout=DEFAULT_TIMEOUT, api_key: str | None = None
) -> list[str]:
    root = server_root(base_url)
    answer = await _arequest("GET", f"{root}/v1/models", root, http_timeout, api_key)
    return _model_ids(root, answer)


async def aload_adapter(
    base_url: str,
    name: str,
    path: str,
    *,
    http_timeout=DEFAULT_TIMEOUT,
    api_key: str | None = None,
    allowed_root: str | os.PathLike[str] | None = None,
) -> bool:
    target = _target(path, allowed_root)
    urls = split_base_urls(base_url)
    if len(urls) > 1:
        report = await _aon_every_replica(urls, name, _aload_one, target, http_timeout, api_key)
        return _all_or_raise(report)
    return await _aload_one(urls[0] if urls else base_url, name, target, http_timeout, api_key)


async def _aload_one(base_url: str, name: str, target: str, http_timeout, api_key) -> bool:
    root = server_root(base_url)
    answer = await _arequest(
        "POST",
        f"{root}/v1/load_lora_adapter",
        root,
        http_timeout,
        api_key,
        json={"lora_name": name, "lora_path": target},
    )
    return _interpret_load(root, name, target, answer)


async def _aensure_one(base_url: str, name: str, target: str, http_timeout, api_key) -> bool:
    if name in await alist_models(base_url, http_timeout=http_timeout, api_key=api_key):
        return False
    return await _aload_one(base_url, name, target, http_timeout, api_key)


async def _aon_every_replica(urls, name, action, target, http_timeout, api_key) -> ReplicaLoads:
    async def attempt(url: str) -> bool | AdapterError:
        try:
            return await action(url, name, target, http_timeout, api_key)
        except AdapterError as exc:
            return exc

    results = await asyncio.gather(*(attempt(url) for url in urls))
    return _report(name, urls, results)


async def aensure_loaded(
    base_url: str,
    name: str,
    path: str,
    *,
    http_timeout=DEFAULT_TIMEOUT,
    api_key: str | None = None,
    allowed_root: str | os.PathLike[str] | None = None,
) -> bool:
    target = _target(path, allowed_root)
    urls = split_base_urls(base_url)
    if len(urls) > 1:
        report = await _aon_every_replica(urls, name, _aensure_one, target, http_timeout, api_key)
        return _all_or_raise(report)
    return await _aensure_one(urls[0] if urls else base_url, name, target, http_timeout, api_key)


async def aensure_loaded_everywhere(
    base_url: str | Sequence[str],
    name: str,
    path: str,
    *,
    http_timeout=DEFAULT_TIMEOUT,
    api_key: str | None = None,
    allowed_root: str | os.PathLike[str] | None = None,
) -> ReplicaLoads:
    target = _target(path, allowed_root)
    urls = split_base_urls(base_url)
    return await _aon_every_replica(urls, name, _aensure_one, target, http_timeout, api_key)
