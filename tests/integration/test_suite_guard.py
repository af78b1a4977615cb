"""The suite's guard (tests/conftest.py): server-backed tests run on PostgreSQL and Redis or
not at all, and no test touches a deployment's Redis database."""

import copy
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from tests.conftest import isolation_problems, purge_queues, redis_db, service_problems
from tutor.celery import app

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CLOSED_PORT = 9  # nothing listens there
REFUSED = 4  # pytest.ExitCode.USAGE_ERROR


def run_pytest(*args: str, **env: str) -> subprocess.CompletedProcess:
    """pytest in a process of its own, with ``env`` over this one's environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


# Selected in the runs below: any integration test would do, this one is cheap.
SELECTED = f"{Path(__file__).relative_to(REPO)}::test_redis_database_numbers"


def test_redis_database_numbers():
    assert redis_db("redis://127.0.0.1:6379/14") == 14
    assert redis_db("redis://127.0.0.1:6379") == 0
    assert redis_db("redis://127.0.0.1:6379/") == 0
    assert redis_db("rediss://user:pw@host:6380/3") == 3
    assert redis_db("unix:///run/redis.sock?db=5") == 5
    assert redis_db("filesystem://") is None
    assert redis_db("memory://") is None


def test_this_run_is_on_the_services_and_isolated():
    broker = app.conf.broker_url
    options = app.conf.broker_transport_options
    assert service_problems(settings, broker) == []
    assert isolation_problems(settings, broker, app.conf.result_backend, options) == []
    test_db = redis_db(settings.REDIS_URL)
    assert test_db and redis_db(broker) == test_db
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL
    assert settings.CACHES["default"]["KEY_PREFIX"] == settings.TEST_REDIS_PREFIX
    assert options["global_keyprefix"] == f"{settings.TEST_REDIS_PREFIX}:"
    layer = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    assert layer["prefix"] == settings.TEST_REDIS_PREFIX


def fake_settings(redis_url: str, prefix: str = "tutor-test") -> SimpleNamespace:
    """The test settings with every Redis connection on ``redis_url``."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"].update(hosts=[{"address": redis_url}], prefix=prefix)
    caches = copy.deepcopy(settings.CACHES)
    caches["default"].update(LOCATION=redis_url, KEY_PREFIX=prefix)
    return SimpleNamespace(
        DATABASES=settings.DATABASES,
        CHANNEL_LAYERS=layers,
        CACHES=caches,
        REDIS_URL=redis_url,
        TEST_REDIS_PREFIX=prefix,
    )


def test_a_deployments_redis_database_or_prefix_is_refused():
    deployment = "redis://127.0.0.1:6379/0"
    options = {"global_keyprefix": "tutor-test:"}
    problems = isolation_problems(fake_settings(deployment), deployment, deployment, options)
    assert problems == [
        "the channel layer, the cache, the Celery broker and Celery's results are on Redis"
        " database 0 (redis://127.0.0.1:6379/0), a deployment's: tests use a database of their"
        " own, e.g. REDIS_URL=redis://127.0.0.1:6379/14"
    ]
    # A broker elsewhere than the tests' database, and a deployment's key prefixes.
    test_url = "redis://127.0.0.1:6379/14"
    problems = isolation_problems(
        fake_settings(test_url, prefix="asgi"), "redis://127.0.0.1:6379/2", None, {}
    )
    assert problems == [
        "the Celery broker is on Redis database 2 (redis://127.0.0.1:6379/2), not the tests'"
        " database 14",
        "the test key prefix is 'asgi', a deployment's: set CHANNELS_PREFIX=tutor-test",
        "the Celery broker writes keys with the prefix '', not 'asgi'",
    ]


@pytest.fixture
def deployment_broker():
    """The app pointed at a deployment's Redis database (nothing connects to it here)."""
    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:6379/0"
    yield
    app.conf.broker_url = previous


def test_purge_refuses_a_deployments_broker(deployment_broker):
    with pytest.raises(RuntimeError, match=r"refusing to purge queues: .*Redis database 0"):
        purge_queues(app.conf.task_default_queue)


def test_purge_refuses_queues_that_are_not_the_apps():
    with pytest.raises(RuntimeError, match="celery-deployment are not the test app's queues"):
        purge_queues("celery-deployment")


def test_integration_tests_refuse_sqlite_and_the_in_memory_services(tmp_path):
    run = run_pytest(SELECTED, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", REDIS_URL="")
    output = run.stdout + run.stderr
    assert run.returncode == REFUSED, output
    assert "the test suite refuses to run (integration tests are selected)" in output
    assert "tutor.db.sqlite3" in output and "not PostgreSQL" in output
    assert "the channel layer is channels.layers.InMemoryChannelLayer, not Redis" in output
    assert "the Celery broker is filesystem://, not Redis" in output
    assert "passed" not in output


def test_integration_tests_refuse_servers_that_cannot_be_reached():
    run = run_pytest(
        SELECTED,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{CLOSED_PORT}/tutor",
        REDIS_URL=f"redis://127.0.0.1:{CLOSED_PORT}/14",
    )
    output = run.stdout + run.stderr
    assert run.returncode == REFUSED, output
    assert f"cannot reach PostgreSQL at 127.0.0.1:{CLOSED_PORT}" in output
    assert f"cannot reach Redis at redis://127.0.0.1:{CLOSED_PORT}/14" in output
    assert "passed" not in output


def test_every_run_refuses_a_deployments_redis_database():
    run = run_pytest("tests/unit/test_frames.py", "-m", "unit", REDIS_URL="redis://127.0.0.1/0")
    output = run.stdout + run.stderr
    assert run.returncode == REFUSED, output
    assert "on Redis database 0 (redis://127.0.0.1/0), a deployment's" in output
    assert "passed" not in output


def test_unit_runs_need_no_servers():
    run = run_pytest(
        "tests/unit/test_frames.py",
        "-m",
        "unit",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{CLOSED_PORT}/tutor",
        REDIS_URL=f"redis://127.0.0.1:{CLOSED_PORT}/14",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout
