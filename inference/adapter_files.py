"""Where adapter folders may come from, and what they must hold (files only, no HTTP).

``allowed_root``, when given, confines an adapter folder to that directory
(:func:`confined_path`): a path that leaves it (``..``, an absolute path elsewhere, a symlink
pointing out) is refused before anything is sent to the model server. :func:`validate_adapter`
checks a folder's ``adapter_config.json`` and the header of its safetensors file, so that a
truncated or oversized adapter is refused before it is promoted rather than when vLLM fails to
load it for a student.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from inference.adapter_errors import AdapterPathError, InvalidAdapter


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
