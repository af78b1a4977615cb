"""Keeps the vLLM server serving the policy being trained, as a LoRA adapter loaded at run time.

Only HTTP to the server (:mod:`inference.adapters`) and the model's own ``save_pretrained``: no
torch import, so this imports fast and tests without a model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from inference.adapters import AdapterError, load_adapter, unload_adapter


class PolicyPublisher:
    """Keeps the vLLM server serving the current policy: after each optimiser step the adapter
    is saved and loaded under a new name (vLLM caches adapters by name), and the previous one
    is unloaded. Under ``accelerate`` with several processes only the main one saves and loads;
    the others wait at a barrier and then use the same (step-derived) name."""

    def __init__(
        self, base_url: str, workdir: Path, prefix: str, api_key: str | None = None
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.dir = workdir / "published"
        self.prefix = prefix
        self.current: str | None = None
        self.current_path: Path | None = None

    def publish(self, model: Any, step: int, accelerator: Any = None) -> str:
        name = f"{self.prefix}-step{step}"
        path = self.dir / f"step{step}"
        main = accelerator is None or accelerator.is_main_process
        if main:
            model.save_pretrained(str(path))
            load_adapter(self.base_url, name, str(path), api_key=self.api_key)
        if accelerator is not None:
            accelerator.wait_for_everyone()
        previous, previous_path = self.current, self.current_path
        self.current, self.current_path = name, path
        if main and previous and previous != name:
            try:
                unload_adapter(self.base_url, previous, api_key=self.api_key)
            except AdapterError:
                pass  # a stale adapter only costs cache space on the server
            if previous_path is not None:
                shutil.rmtree(previous_path, ignore_errors=True)
        return name

    def close(self) -> None:
        if self.current:
            try:
                unload_adapter(self.base_url, self.current, api_key=self.api_key)
            except AdapterError:
                pass
