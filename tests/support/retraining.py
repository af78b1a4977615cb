"""Helpers for the retraining tests: versions, evaluation reports in the shape
``training.evaluation.run_evaluation`` returns, finished evaluation runs."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from tutor.retraining.models import EvalRun, ModelVersion


def metric(value: float, low: float, high: float, n: int = 20) -> dict:
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def report(*, leak: tuple[float, float, float], gain: tuple[float, float, float]) -> dict:
    """A minimal evaluation report: the interactive task's two gated figures."""
    return {
        "schema": "test",
        "tasks": {
            "interactive": {
                "n": 20,
                "metrics": {
                    "leak_rate": metric(*leak),
                    "solve_gain": metric(*gain),
                    "solve_after": metric(0.5, 0.4, 0.6),
                },
            }
        },
    }


GOOD = report(leak=(0.10, 0.05, 0.15), gain=(0.30, 0.20, 0.40))
LEAKY = report(leak=(0.60, 0.50, 0.70), gain=(0.35, 0.25, 0.45))


def write_safetensors(path: Path, shapes: dict[str, list[int]]) -> Path:
    """A minimal valid safetensors file of float32 zeros."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape) * 4
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return path


def write_adapter(folder: Path, rank: int = 8, **config) -> Path:
    """A LoRA adapter folder vLLM could load: config and weights of rank ``rank``."""
    folder.mkdir(parents=True, exist_ok=True)
    values = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, **config}
    (folder / "adapter_config.json").write_text(json.dumps(values))
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    write_safetensors(
        folder / "adapter_model.safetensors",
        {f"{prefix}.lora_A.weight": [rank, 16], f"{prefix}.lora_B.weight": [16, rank]},
    )
    return folder


def make_version(name: str, *, adapter_path: str | None = None, **fields) -> ModelVersion:
    """A version whose adapter is a sound one in TUTOR_ADAPTER_DIR/<name>, unless given."""
    if adapter_path is None:
        adapter_path = str(write_adapter(Path(settings.TUTOR_ADAPTER_DIR) / name))
    return ModelVersion.objects.create(
        name=name, base_model="default", adapter_path=adapter_path, **fields
    )


def finished_eval(version: ModelVersion, rep: dict) -> EvalRun:
    from training.evaluation import headline

    return EvalRun.objects.create(
        version=version,
        status=EvalRun.Status.SUCCEEDED,
        report=rep,
        headline=headline(rep),
        done=1,
        total=1,
        finished_at=timezone.now(),
    )
