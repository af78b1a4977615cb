"""Test settings: the production services (PostgreSQL through psycopg 3, Redis for the channel
layer and Celery), on this machine's local servers unless the environment names others."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tutor")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("CHANNELS_PREFIX", "tutor-test")

from tutor.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests must see deltas as they come.
TUTOR_COALESCE_SECONDS = 0.0
