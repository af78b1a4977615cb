"""The scale-out configs shipped for accelerate parse as accelerate reads them."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.utils import DistributedType

pytestmark = pytest.mark.unit

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


@pytest.mark.parametrize(
    ("name", "kind", "zero_stage"),
    [
        ("multi_gpu.yaml", DistributedType.MULTI_GPU, None),
        ("deepspeed_zero2.yaml", DistributedType.DEEPSPEED, 2),
        ("deepspeed_zero3.yaml", DistributedType.DEEPSPEED, 3),
    ],
)
def test_accelerate_reads_the_config(name, kind, zero_stage):
    config = ClusterConfig.from_yaml_file(CONFIGS / name)
    assert config.distributed_type == kind
    assert config.num_processes > 1 and not config.use_cpu
    if zero_stage is not None:
        assert config.deepspeed_config["zero_stage"] == zero_stage
