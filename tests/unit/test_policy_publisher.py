"""The publisher that keeps vLLM serving the policy being trained, and the torch-free modules
of the trainer (sequence encoding, publishing, the rollout function) importing without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import training.publisher as publisher_module
from inference.adapters import AdapterError
from training.publisher import PolicyPublisher

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TORCH_FREE = (
    "training.encoding",
    "training.publisher",
    "training.grpo_rollouts",
    "pedagogy.moderation",
    "pedagogy.knowledge_tracing",
)


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module: str) -> None:
    """A fresh interpreter: this test process may have loaded torch already."""
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


class Model:
    def __init__(self) -> None:
        self.saved: list[str] = []

    def save_pretrained(self, path: str) -> None:
        Path(path).mkdir(parents=True)
        (Path(path) / "adapter_config.json").write_text("{}")
        self.saved.append(path)


class Server:
    """Stands in for ``load_adapter`` and ``unload_adapter``: records calls, fails on demand."""

    def __init__(self, fail_unload: bool = False) -> None:
        self.loaded: dict[str, str] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        self.fail_unload = fail_unload

    def load(self, base_url: str, name: str, path: str, *, api_key: str | None = None) -> None:
        self.calls.append(("load", name, api_key))
        self.loaded[name] = path

    def unload(self, base_url: str, name: str, *, api_key: str | None = None) -> bool:
        self.calls.append(("unload", name, api_key))
        if self.fail_unload:
            raise AdapterError("the server refused")
        return self.loaded.pop(name, None) is not None


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    fake = Server()
    monkeypatch.setattr(publisher_module, "load_adapter", fake.load)
    monkeypatch.setattr(publisher_module, "unload_adapter", fake.unload)
    return fake


def test_each_step_is_served_under_a_new_name_and_the_previous_one_goes(
    server: Server, tmp_path: Path
) -> None:
    publisher = PolicyPublisher("http://vllm:8001", tmp_path, "job-7", api_key="k")
    model = Model()
    assert publisher.publish(model, 0) == "job-7-step0"
    assert publisher.publish(model, 1) == "job-7-step1"
    assert publisher.current == "job-7-step1"
    assert set(server.loaded) == {"job-7-step1"}
    assert server.calls == [
        ("load", "job-7-step0", "k"), ("load", "job-7-step1", "k"), ("unload", "job-7-step0", "k"),
    ]  # fmt: skip
    # the previous adapter's files are removed, the served one's kept
    assert not (tmp_path / "published" / "step0").exists()
    assert (tmp_path / "published" / "step1" / "adapter_config.json").exists()
    publisher.close()
    assert server.loaded == {}


def test_republishing_the_same_step_unloads_nothing(server: Server, tmp_path: Path) -> None:
    publisher = PolicyPublisher("http://vllm:8001", tmp_path, "job")
    publisher.publish(Model(), 3)
    server.calls.clear()
    publisher.publish(SimpleNamespace(save_pretrained=lambda path: None), 3)
    assert server.calls == [("load", "job-step3", None)]
    assert (tmp_path / "published" / "step3" / "adapter_config.json").exists()


def test_a_refused_unload_does_not_stop_training(tmp_path: Path, monkeypatch) -> None:
    fake = Server(fail_unload=True)
    monkeypatch.setattr(publisher_module, "load_adapter", fake.load)
    monkeypatch.setattr(publisher_module, "unload_adapter", fake.unload)
    publisher = PolicyPublisher("http://vllm:8001", tmp_path, "job")
    publisher.publish(Model(), 0)
    assert publisher.publish(Model(), 1) == "job-step1"
    publisher.close()  # swallowed too
    assert [c[0] for c in fake.calls] == ["load", "load", "unload", "unload"]


class Accelerator:
    def __init__(self, main: bool) -> None:
        self.is_main_process = main
        self.barriers = 0

    def wait_for_everyone(self) -> None:
        self.barriers += 1


def test_only_the_main_process_saves_and_loads_but_all_wait_and_agree(
    server: Server, tmp_path: Path
) -> None:
    main, other = Accelerator(main=True), Accelerator(main=False)
    model_main, model_other = Model(), Model()
    on_main = PolicyPublisher("http://vllm:8001", tmp_path, "job")
    on_other = PolicyPublisher("http://vllm:8001", tmp_path, "job")
    for step in (0, 1):
        assert on_main.publish(model_main, step, main) == on_other.publish(model_other, step, other)
    assert main.barriers == other.barriers == 2
    assert model_other.saved == [] and len(model_main.saved) == 2
    assert [c[0] for c in server.calls] == ["load", "load", "unload"]
