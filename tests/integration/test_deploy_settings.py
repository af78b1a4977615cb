"""The production settings pass Django's deployment checks; the embedded default stays on http.

Each check runs ``manage.py`` in a fresh process with only the environment given here (the
test process's own environment holds the test settings).
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_manage(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "CELERY_", "TUTOR_"))
    }
    base.update(DJANGO_SETTINGS_MODULE="tutor.settings", TUTOR_VAR_DIR=str(tmp_path / "var"))
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    # Nothing is connected to by the checks: the hosts need not exist.
    "DATABASE_URL": "postgres://tutor:secret@db.invalid:5432/tutor",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "DJANGO_ALLOWED_HOSTS": "tutor.example.org",
}


def test_production_settings_pass_the_deployment_checks(tmp_path):
    result = run_manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        **PRODUCTION,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output and "security.W" not in output, output


SECURITY_SETTINGS = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "USE_X_FORWARDED_HOST",
]


def security_settings(tmp_path, **env: str) -> dict:
    script = (
        "import json; from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {SECURITY_SETTINGS!r}}}))"
    )
    result = run_manage(tmp_path, "shell", "-c", script, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_embedded_default_stays_on_plain_http(tmp_path):
    values = security_settings(tmp_path)
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["CSRF_COOKIE_SECURE"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] is None


def test_proxy_headers_and_the_https_switch_come_from_the_environment(tmp_path):
    values = security_settings(
        tmp_path,
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
        DJANGO_USE_X_FORWARDED_HOST="1",
        **PRODUCTION,
    )
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["USE_X_FORWARDED_HOST"] is True

    # A production database served over plain http (e.g. a trial behind no proxy).
    values = security_settings(
        tmp_path, DJANGO_SECRET_KEY=secrets.token_urlsafe(64), DJANGO_SECURE="0", **PRODUCTION
    )
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_SECURE"] is False
