"""What adapter operations raise, and the per-replica report a partial load carries.

Apart from :mod:`inference.adapter_files` and :mod:`inference.adapter_protocol` so that both can
raise them without importing each other; :mod:`inference.adapters` re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


class AdapterRejected(AdapterError):
    """The server read the adapter and refused it (wrong shapes, a rank above its maximum, a
    corrupt file): loading it again will not help, unlike a server that is down."""


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
