"""Test settings: the production services (PostgreSQL through psycopg 3, Redis for the channel
layer and Celery), on this machine's local servers unless the environment names others."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tutor")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("CHANNELS_PREFIX", "tutor-test")

from tutor.settings import *  # noqa: F403

# Redis: a database of the tests' own (never a deployment's db 0: tests/conftest.py refuses to
# run on it) for the channel layer, the cache and Celery, whatever CELERY_BROKER_URL or
# CACHE_PREFIX the environment holds, and every key with the test prefix.
TEST_REDIS_PREFIX = os.environ["CHANNELS_PREFIX"]
if REDIS_URL:  # noqa: F405
    CACHES["default"]["KEY_PREFIX"] = TEST_REDIS_PREFIX  # noqa: F405
    CELERY_BROKER_URL = CELERY_RESULT_BACKEND = REDIS_URL  # noqa: F405
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"{TEST_REDIS_PREFIX}:"}
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"{TEST_REDIS_PREFIX}:"}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests must see deltas as they come.
TUTOR_COALESCE_SECONDS = 0.0
# The test client and the browser tests' live server speak plain http (DATABASE_URL alone would
# turn on the production HTTPS settings; tests/integration/test_deploy_settings.py checks them).
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
