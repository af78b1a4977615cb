"""Adapter folders are confined to the adapter directory, checked before promotion, and loaded
with the API key (inference.adapters; no Django)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from inference import adapters
from tests.support.adapters import write_adapter, write_safetensors
from tests.support.scripted_model_server import ScriptedModelServer

pytestmark = pytest.mark.unit

NOWHERE = "http://127.0.0.1:9/v1"  # nothing listens: a request would fail differently


@pytest.fixture
def root(tmp_path) -> Path:
    folder = tmp_path / "adapters"
    folder.mkdir()
    return folder


# ---- confinement ----------------------------------------------------------------------------


def test_paths_inside_the_root_are_accepted_and_normalised(root):
    assert adapters.confined_path(root / "tutor-v1", root) == root / "tutor-v1"
    assert adapters.confined_path("tutor-v1", root) == root / "tutor-v1"  # relative: from root
    assert adapters.confined_path(f"{root}/x/../tutor-v2", root) == root / "tutor-v2"


@pytest.mark.parametrize("path", ["../../etc", "/etc", "/adapters/tutor-v1", "", ".", "a/../.."])
def test_paths_outside_the_root_are_refused(root, path):
    with pytest.raises(adapters.AdapterPathError, match="outside the adapter directory"):
        adapters.confined_path(path, root)


def test_a_sibling_folder_sharing_the_prefix_is_outside(root):
    sibling = root.parent / (root.name + "-evil")
    with pytest.raises(adapters.AdapterPathError):
        adapters.confined_path(sibling / "x", root)


def test_symlinks_that_lead_out_are_refused(root, tmp_path):
    outside = write_adapter(tmp_path / "elsewhere")
    os.symlink(outside, root / "tutor-v9")
    with pytest.raises(adapters.AdapterPathError):
        adapters.confined_path(root / "tutor-v9", root)
    os.symlink(root, tmp_path / "link-to-root")  # a link *to* the root itself is fine
    inside = write_adapter(root / "tutor-v1")
    assert adapters.confined_path(tmp_path / "link-to-root" / "tutor-v1", tmp_path / "link-to-root")
    assert adapters.validate_adapter(inside, allowed_root=root).rank == 8


def test_nul_bytes_are_refused(root):
    with pytest.raises(adapters.AdapterPathError):
        adapters.confined_path("tutor\x00v1", root)


def test_loading_from_outside_the_root_sends_nothing(root):
    with ScriptedModelServer(served_models={"base"}) as server:
        for call in (adapters.load_adapter, adapters.ensure_loaded):
            with pytest.raises(adapters.AdapterPathError):
                call(server.base_url, "evil", "../../etc", allowed_root=root)
        assert server.loads == [] and server.authorizations == []
        # Inside the root: loaded under its absolute path.
        assert adapters.ensure_loaded(server.base_url, "tutor-v1", "tutor-v1", allowed_root=root)
        assert server.loads == [{"lora_name": "tutor-v1", "lora_path": str(root / "tutor-v1")}]


async def test_async_loading_is_confined_too(root):
    with pytest.raises(adapters.AdapterPathError):
        await adapters.aensure_loaded(NOWHERE, "evil", "/etc", allowed_root=root)
    with pytest.raises(adapters.AdapterPathError):
        await adapters.aload_adapter(NOWHERE, "evil", "/etc", allowed_root=root)


# ---- the API key ---------------------------------------------------------------------------


def test_every_adapter_call_sends_the_api_key(monkeypatch):
    monkeypatch.delenv("TUTOR_MODEL_API_KEY", raising=False)
    with ScriptedModelServer(served_models={"base"}, api_key="sekret") as server:
        assert adapters.ensure_loaded(server.base_url, "a", "/x", api_key="sekret")
        assert adapters.unload_adapter(server.base_url, "a", api_key="sekret")
        assert server.authorizations == ["Bearer sekret"] * 3 and server.unauthorized == 0
        with pytest.raises(adapters.Unauthorized, match="TUTOR_MODEL_API_KEY"):
            adapters.list_models(server.base_url)
        with pytest.raises(adapters.Unauthorized):
            adapters.load_adapter(server.base_url, "a", "/x", api_key="wrong")


def test_the_key_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("TUTOR_MODEL_API_KEY", "from-env")
    with ScriptedModelServer(served_models={"base"}, api_key="from-env") as server:
        assert adapters.list_models(server.base_url) == ["base"]
    monkeypatch.setenv("TUTOR_MODEL_API_KEY", "not-needed")  # the placeholder: no header
    assert adapters.auth_headers() == {}
    assert adapters.auth_headers("k") == {"Authorization": "Bearer k"}


async def test_async_calls_send_the_key():
    with ScriptedModelServer(served_models={"base"}, api_key="sekret") as server:
        assert await adapters.aensure_loaded(server.base_url, "a", "/x", api_key="sekret")
        assert server.unauthorized == 0 and len(server.loads) == 1


# ---- validation before promotion -----------------------------------------------------------


def test_a_sound_adapter_passes(root):
    info = adapters.validate_adapter(write_adapter(root / "v1", rank=8), max_rank=16)
    assert (info.rank, info.weights, info.tensors) == (8, "adapter_model.safetensors", 2)


def test_an_adapter_written_by_the_safetensors_library_passes_and_its_truncation_fails(root):
    from safetensors.numpy import save_file

    folder = root / "v1"
    write_adapter(folder)
    weights = folder / "adapter_model.safetensors"
    save_file({"a.lora_A.weight": np.zeros((8, 32), dtype=np.float32)}, str(weights))
    assert adapters.validate_adapter(folder).tensors == 1
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    with pytest.raises(adapters.InvalidAdapter, match="truncated"):
        adapters.validate_adapter(folder)


def test_a_rank_above_the_servers_maximum_is_refused(root):
    folder = write_adapter(root / "v1", rank=128)
    with pytest.raises(adapters.InvalidAdapter, match="rank 128, above the model server's maximum"):
        adapters.validate_adapter(folder, max_rank=64)
    wide = write_adapter(root / "v2", rank=8, rank_pattern={"q_proj": 96})
    with pytest.raises(adapters.InvalidAdapter, match="rank 96"):
        adapters.validate_adapter(wide, max_rank=64)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "adapter_config.json").unlink(), "holds no adapter_config.json"),
        (lambda f: (f / "adapter_config.json").write_text("{not json"), "not readable JSON"),
        (lambda f: (f / "adapter_config.json").write_text('{"r": 0}'), "no valid LoRA rank"),
        (lambda f: (f / "adapter_config.json").write_text('{"r": 8, "peft_type": "IA3"}'), "IA3"),
        (lambda f: (f / "adapter_model.safetensors").unlink(), "holds no adapter weights"),
        (lambda f: (f / "adapter_model.safetensors").write_bytes(b"\x01"), "truncated"),
        (
            lambda f: (f / "adapter_model.safetensors").write_bytes(struct.pack("<Q", 10**12)),
            "header claims",
        ),
        (
            lambda f: (f / "adapter_model.safetensors").write_bytes(struct.pack("<Q", 4) + b"{{{{"),
            "corrupt header",
        ),
        (
            lambda f: f.joinpath("adapter_model.safetensors").write_bytes(
                f.joinpath("adapter_model.safetensors").read_bytes() + b"junk"
            ),
            "longer than its header says",
        ),
        (lambda f: write_safetensors(f / "adapter_model.safetensors", {}), "holds no tensors"),
    ],
)
def test_broken_adapters_are_refused_with_the_reason(root, damage, message):
    folder = write_adapter(root / "v1")
    damage(folder)
    with pytest.raises(adapters.InvalidAdapter, match=message):
        adapters.validate_adapter(folder, allowed_root=root)


def test_a_tensor_that_does_not_match_its_shape_is_refused(root):
    folder = write_adapter(root / "v1")
    weights = folder / "adapter_model.safetensors"
    header = {"t": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 8]}}
    raw = json.dumps(header).encode()
    weights.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(8))
    with pytest.raises(adapters.InvalidAdapter, match="does not match its shape"):
        adapters.validate_adapter(folder)


def test_validation_refuses_missing_folders_and_paths_outside(root):
    with pytest.raises(adapters.InvalidAdapter, match="does not exist"):
        adapters.validate_adapter(root / "nope", allowed_root=root)
    with pytest.raises(adapters.AdapterPathError):
        adapters.validate_adapter("/etc", allowed_root=root)
