"""Load LoRA adapters into a running vLLM server at run time (no restart, no Django).

vLLM serves an adapter under a name once ``POST /v1/load_lora_adapter`` with
``{"lora_name": NAME, "lora_path": DIR}`` succeeded; requests then pick it with
``"model": NAME``. That endpoint exists only when the server was started with ``--enable-lora``
and the environment variable ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``
(``python -m inference.launcher --enable-lora`` sets both). Runtime loads do not survive a
restart of vLLM: callers load again when a request for the adapter answers 404
(:func:`ensure_loaded` is idempotent). ``DIR`` is a path on the vLLM server's machine.

Every function takes the server's URL with or without ``/v1`` (``TUTOR_MODEL_BASE_URL``).
Synchronous functions are for workers and views, the ``a``-prefixed ones for the event loop;
both run the same steps (:mod:`inference.adapter_protocol`), over :class:`_Blocking` and
:class:`_EventLoop` transports. The load functions (:func:`load_adapter`, :func:`ensure_loaded`
and their ``a`` forms) also take several replicas, comma-separated: they load on every one at
the same time, and raise :class:`PartialLoad` (whose ``report`` names the replicas that failed,
and why) unless all succeeded; :func:`ensure_loaded_everywhere` returns that report instead of
raising.

``api_key`` is sent as ``Authorization: Bearer`` (a server started with vLLM's ``--api-key``
refuses the adapter routes without it); when not given, the environment's
``TUTOR_MODEL_API_KEY`` is used. ``allowed_root``, when given, confines the adapter folder to
that directory (:func:`confined_path`, in :mod:`inference.adapter_files` with
:func:`validate_adapter`, which checks a folder before it is promoted). This module re-exports
the names of those modules, so ``from inference import adapters`` reaches all of them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict, TypeVar, Unpack

import httpx

from inference.adapter_errors import (
    AdapterError,
    AdapterPathError,
    AdapterRejected,
    InvalidAdapter,
    LoRANotEnabled,
    PartialLoad,
    ReplicaLoads,
    RuntimeLoadingDisabled,
    ServerUnreachable,
    Unauthorized,
)
from inference.adapter_files import (
    AdapterInfo,
    check_safetensors,
    confined_path,
    read_adapter_config,
    validate_adapter,
)
from inference.adapter_protocol import (
    API_KEY_ENV,
    NO_KEY,
    Answer,
    Call,
    Plan,
    Steps,
    all_or_raise,
    auth_headers,
    drive,
    ensure_steps,
    list_steps,
    load_steps,
    server_root,
    unload_steps,
    unreachable,
)

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_TIMEOUT",
    "NO_KEY",
    "AdapterError",
    "AdapterInfo",
    "AdapterPathError",
    "AdapterRejected",
    "InvalidAdapter",
    "LoRANotEnabled",
    "Options",
    "PartialLoad",
    "ReplicaLoads",
    "RuntimeLoadingDisabled",
    "ServerUnreachable",
    "Unauthorized",
    "aensure_loaded",
    "aensure_loaded_everywhere",
    "alist_models",
    "aload_adapter",
    "auth_headers",
    "check_safetensors",
    "confined_path",
    "ensure_loaded",
    "ensure_loaded_everywhere",
    "list_models",
    "load_adapter",
    "read_adapter_config",
    "server_root",
    "unload_adapter",
    "validate_adapter",
]

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=5.0)  # loading reads the weights: allow time
Timeout = float | httpx.Timeout | None
Root = str | os.PathLike[str] | None


class Options(TypedDict, total=False):
    """The keyword options every function here takes (an unknown one is a ``TypeError``)."""

    http_timeout: Timeout  # default: DEFAULT_TIMEOUT
    api_key: str | None  # default: $TUTOR_MODEL_API_KEY


# ---- transports ---------------------------------------------------------------------------------


class _Transport:
    def __init__(
        self, *, http_timeout: Timeout = DEFAULT_TIMEOUT, api_key: str | None = None
    ) -> None:
        self.http_timeout = http_timeout
        self.headers = auth_headers(api_key)


class _Blocking(_Transport):
    """Runs steps with blocking requests; several replicas on threads at once, so that a slow
    or dead replica costs its own timeout, not the others'."""

    def send(self, call: Call) -> Answer:
        try:
            response = httpx.request(
                call.method,
                call.url,
                json=call.body,
                timeout=self.http_timeout,
                headers=self.headers,
            )
        except httpx.HTTPError as exc:
            raise unreachable(call.root, exc) from exc
        return Answer(response.status_code, response.text)

    def run(self, steps: Steps[T]) -> T:
        return drive(steps, self.send)

    def every(self, plan: Plan) -> ReplicaLoads:
        def attempt(url: str) -> bool | AdapterError:
            try:
                return self.run(plan.steps(url))
            except AdapterError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=len(plan.urls)) as pool:
            return plan.report(list(pool.map(attempt, plan.urls)))

    def one_or_all(self, plan: Plan) -> bool:
        return all_or_raise(self.every(plan)) if plan.several else self.run(plan.steps())


class _EventLoop(_Transport):
    """Runs steps on the event loop; several replicas at once with :func:`asyncio.gather`."""

    async def send(self, call: Call) -> Answer:
        try:
            async with httpx.AsyncClient(timeout=self.http_timeout, headers=self.headers) as client:
                response = await client.request(call.method, call.url, json=call.body)
        except httpx.HTTPError as exc:
            raise unreachable(call.root, exc) from exc
        return Answer(response.status_code, response.text)

    async def run(self, steps: Steps[T]) -> T:
        """:func:`~inference.adapter_protocol.drive`, awaiting each answer."""
        try:
            call = next(steps)
            while True:
                call = steps.send(await self.send(call))
        except StopIteration as stop:
            return stop.value

    async def every(self, plan: Plan) -> ReplicaLoads:
        async def attempt(url: str) -> bool | AdapterError:
            try:
                return await self.run(plan.steps(url))
            except AdapterError as exc:
                return exc

        return plan.report(await asyncio.gather(*(attempt(url) for url in plan.urls)))

    async def one_or_all(self, plan: Plan) -> bool:
        if plan.several:
            return all_or_raise(await self.every(plan))
        return await self.run(plan.steps())


# ---- synchronous (workers, views) ---------------------------------------------------------------


def list_models(base_url: str, **options: Unpack[Options]) -> list[str]:
    """The names the server serves: its base model(s) and the adapters loaded."""
    return _Blocking(**options).run(list_steps(base_url))


def load_adapter(
    base_url: str, name: str, path: str, *, allowed_root: Root = None, **options: Unpack[Options]
) -> bool:
    """Load ``path`` under ``name``; False when the server already had it. Several replicas
    (comma-separated): on each; True when any loaded it now, :class:`PartialLoad` unless all
    serve it."""
    transport = _Blocking(**options)
    return transport.one_or_all(Plan.make(base_url, name, path, allowed_root, load_steps))


def unload_adapter(base_url: str, name: str, **options: Unpack[Options]) -> bool:
    """Unload ``name``; False when it was not loaded."""
    return _Blocking(**options).run(unload_steps(base_url, name))


def ensure_loaded(
    base_url: str, name: str, path: str, *, allowed_root: Root = None, **options: Unpack[Options]
) -> bool:
    """Make sure the server serves ``name``; True when this call loaded it. A path outside
    ``allowed_root`` is refused before the server is asked anything. Several replicas
    (comma-separated): on each at once; True when any loaded it now, :class:`PartialLoad`
    unless all serve it."""
    transport = _Blocking(**options)
    return transport.one_or_all(Plan.make(base_url, name, path, allowed_root, ensure_steps))


def ensure_loaded_everywhere(
    base_url: str | Sequence[str],
    name: str,
    path: str,
    *,
    allowed_root: Root = None,
    **options: Unpack[Options],
) -> ReplicaLoads:
    """:func:`ensure_loaded` on every replica ``base_url`` lists, at the same time; what each
    did, failures included (only a path outside ``allowed_root`` raises)."""
    transport = _Blocking(**options)
    return transport.every(Plan.make(base_url, name, path, allowed_root, ensure_steps))


# ---- asynchronous (the event loop): the same, awaited -------------------------------------------


async def alist_models(base_url: str, **options: Unpack[Options]) -> list[str]:
    """:func:`list_models`, awaited."""
    return await _EventLoop(**options).run(list_steps(base_url))


async def aload_adapter(
    base_url: str, name: str, path: str, *, allowed_root: Root = None, **options: Unpack[Options]
) -> bool:
    """:func:`load_adapter`, awaited."""
    transport = _EventLoop(**options)
    return await transport.one_or_all(Plan.make(base_url, name, path, allowed_root, load_steps))


async def aensure_loaded(
    base_url: str, name: str, path: str, *, allowed_root: Root = None, **options: Unpack[Options]
) -> bool:
    """:func:`ensure_loaded`, awaited."""
    transport = _EventLoop(**options)
    return await transport.one_or_all(Plan.make(base_url, name, path, allowed_root, ensure_steps))


async def aensure_loaded_everywhere(
    base_url: str | Sequence[str],
    name: str,
    path: str,
    *,
    allowed_root: Root = None,
    **options: Unpack[Options],
) -> ReplicaLoads:
    """:func:`ensure_loaded_everywhere`, awaited."""
    transport = _EventLoop(**options)
    return await transport.every(Plan.make(base_url, name, path, allowed_root, ensure_steps))
