"""Django settings, read from the environment.

With no environment at all the platform runs on its embedded default: a SQLite file, an
in-memory channel layer and a Celery broker kept in files under ``var/``. Setting
``DATABASE_URL`` (PostgreSQL, psycopg 3) and ``REDIS_URL`` switches to production services.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from environs import Env

# Every variable is read through environs: booleans, numbers and lists parse the same way
# everywhere (booleans: 1/0, true/false, yes/no, on/off, y/n, any case), and a value that does
# not parse stops the start with the variable's name instead of silently meaning "off".
env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env.path("TUTOR_VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list, items stripped, empty items dropped."""
    return [item.strip() for item in env.list(name, default) if item.strip()]


DEBUG = env.bool("DJANGO_DEBUG", False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    # The embedded default keeps a per-installation key on disk instead of a shared constant.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "tutor.accounts",
    "tutor.problems",
    "tutor.dialogues",
    "tutor.classes",
    "tutor.reviews",
    "tutor.dashboards",
    "tutor.retraining",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: refuses a login while its username and address are locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "tutor.urls"
ASGI_APPLICATION = "tutor.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tutor" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_database_url = env.str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tutor.sqlite3'}")
_is_sqlite = _database_url.startswith("sqlite")
DATABASES = {
    "default": dj_database_url.parse(
        _database_url,
        # Reopening a connection for every database call dominated the chat's time to first
        # token (benchmarks/chat_latency.py). SQLite keeps its connections by default; on
        # PostgreSQL set DATABASE_POOL=1 (psycopg's pool), which is safe under ASGI.
        conn_max_age=env.int("DATABASE_CONN_MAX_AGE", 600 if _is_sqlite else 0),
    )
}
if not _is_sqlite and env.bool("DATABASE_POOL", False):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", 2),
        "max_size": env.int("DATABASE_POOL_MAX", 10),
    }
if _is_sqlite:
    # Django's backend, with the writers of this process queued on a lock rather than SQLite's
    # busy handler, which sleeps between tries (see tutor/db/sqlite3/base.py).
    DATABASES["default"]["ENGINE"] = "tutor.db.sqlite3"
    # Several processes (web, worker) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "frontend" / "dist"]
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", "")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same as
                # channels-redis' blocking pop: give the socket room to wait longer.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": env.str("CHANNELS_PREFIX", "asgi"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache keeps the per-user rate limits and the one-reply-per-session locks, so every web
# process must share it: Redis in production. The embedded default runs one web process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_PREFIX", "tutor"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis in production; on the embedded default a broker kept in files, which needs no
# server and is shared by the web process and the worker on one machine.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", "") or REDIS_URL or "filesystem://"
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", "") or (REDIS_URL or None)
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    # The exchange-to-queue bindings (kombu's default: ./control, in whatever folder a process
    # was started from).
    _control_dir = VAR_DIR / "celery" / "control"
    for _folder in (_queue_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "control_folder": str(_control_dir),
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Retraining and evaluation run on the `training` queue: GPU workers consume only it
# (`celery -A tutor worker -Q training`); the embedded worker consumes both queues.
CELERY_TASK_ROUTES = {"tutor.retraining.tasks.*": {"queue": "training"}}

# The tutor model: an OpenAI-compatible server (vLLM) and the name it serves the model under.
# Several replicas of one deployment: comma-separated; each chat session is routed to one of
# them, and promoted adapters are loaded on all (inference/replicas.py).
TUTOR_MODEL_BASE_URL = env.str("TUTOR_MODEL_BASE_URL", "http://127.0.0.1:8001/v1")
TUTOR_MODEL_API_KEY = env.str("TUTOR_MODEL_API_KEY", "not-needed")
TUTOR_MODEL_NAME = env.str("TUTOR_MODEL_NAME", "smollm2-135m-instruct")
# Ask the tutor to plan inside <think> tags (stripped from what students see, kept for
# teachers); train versions with the same setting (TrainJobConfig.hidden_planning).
TUTOR_HIDDEN_PLANNING = env.bool("TUTOR_HIDDEN_PLANNING", False)
TUTOR_MODEL_CONNECT_TIMEOUT = env.float("TUTOR_MODEL_CONNECT_TIMEOUT", 5.0)
# Longest silence between two chunks of a streaming reply, and longest wait for the first one:
# a busy model server queues requests and sends nothing until it schedules them.
TUTOR_MODEL_READ_TIMEOUT = env.float("TUTOR_MODEL_READ_TIMEOUT", 60.0)
TUTOR_MODEL_FIRST_TOKEN_TIMEOUT = env.float("TUTOR_MODEL_FIRST_TOKEN_TIMEOUT", 300.0)
TUTOR_MAX_REPLY_TOKENS = env.int("TUTOR_MAX_REPLY_TOKENS", 400)
TUTOR_TEMPERATURE = env.float("TUTOR_TEMPERATURE", 0.7)
# ---- LLM judge (inference/judge.py, docs/judge.md) ----
# A model on an OpenAI-compatible server that judges each tutor turn after it is sent (post-turn
# check) against two rules: no answer leak, pedagogical values. Empty base URL: the judge is
# off (the default: on the CPU default the tutor's own tiny model would be a poor judge).
TUTOR_JUDGE_BASE_URL = env.str("TUTOR_JUDGE_BASE_URL", "").strip()
TUTOR_JUDGE_MODEL = env.str("TUTOR_JUDGE_MODEL", "") or TUTOR_MODEL_NAME
TUTOR_JUDGE_API_KEY = env.str("TUTOR_JUDGE_API_KEY", "not-needed")
# Seconds for one verdict (both rules are asked at once), and the tokens a verdict may take.
TUTOR_JUDGE_TIMEOUT_SECONDS = env.float("TUTOR_JUDGE_TIMEOUT_SECONDS", 30.0)
TUTOR_JUDGE_MAX_TOKENS = env.int("TUTOR_JUDGE_MAX_TOKENS", 256)
# Training jobs started from the platform use the judge as the reward's style judge too (it
# must be configured above); off by default: it costs a judge call per tutor turn per rollout.
TUTOR_TRAINING_JUDGE = env.bool("TUTOR_TRAINING_JUDGE", False)
# ---- end of LLM judge ----
# How long the consumer gathers deltas before sending them on; the first delta goes at once.
# The answer guard (pedagogy/guard.py, inference/reply_stream.py): replies that would state the
# final answer or false arithmetic are stopped and the model asked again, up to
# TUTOR_GUARD_RETRIES times, then replaced by TUTOR_GUARD_FALLBACK.
TUTOR_GUARD = env.bool("TUTOR_GUARD", True)
TUTOR_GUARD_ARITHMETIC = env.bool("TUTOR_GUARD_ARITHMETIC", True)
TUTOR_GUARD_RETRIES = env.int("TUTOR_GUARD_RETRIES", 2)
TUTOR_GUARD_FALLBACK = env.str(
    "TUTOR_GUARD_FALLBACK",
    "Let's work that part out together rather than me giving it away. "
    "What would you do first, and why?",
)
TUTOR_COALESCE_SECONDS = env.float("TUTOR_COALESCE_SECONDS", 0.05)
# Limits on what a student can send.
TUTOR_MAX_MESSAGE_CHARS = env.int("TUTOR_MAX_MESSAGE_CHARS", 2000)
TUTOR_MAX_ANSWER_CHARS = env.int("TUTOR_MAX_ANSWER_CHARS", 200)
TUTOR_MAX_FRAME_BYTES = env.int("TUTOR_MAX_FRAME_BYTES", 16384)
# Per-user limits (docs/protocol.md): each is answered with an error frame or page.
TUTOR_RATE_MESSAGES_PER_MINUTE = env.int("TUTOR_RATE_MESSAGES_PER_MINUTE", 20)
TUTOR_RATE_ANSWERS_PER_MINUTE = env.int("TUTOR_RATE_ANSWERS_PER_MINUTE", 10)
# Teachers writing problems: answer checks ("try an answer", saves) per minute, imports per hour.
TUTOR_RATE_PROBLEM_CHECKS_PER_MINUTE = env.int("TUTOR_RATE_PROBLEM_CHECKS_PER_MINUTE", 30)
TUTOR_RATE_PROBLEM_IMPORTS_PER_HOUR = env.int("TUTOR_RATE_PROBLEM_IMPORTS_PER_HOUR", 20)
# Students rating tutor replies (thumbs up or down) per minute.
TUTOR_RATE_RATINGS_PER_MINUTE = env.int("TUTOR_RATE_RATINGS_PER_MINUTE", 30)
TUTOR_MAX_ANSWER_ATTEMPTS = env.int("TUTOR_MAX_ANSWER_ATTEMPTS", 30)
TUTOR_RATE_JOIN_CODES_PER_HOUR = env.int("TUTOR_RATE_JOIN_CODES_PER_HOUR", 10)
# A socket whose frames are refused (rate_limited, busy, uncheckable, too_many_attempts) more
# than TUTOR_FLOOD_REFUSALS times within TUTOR_FLOOD_WINDOW_SECONDS is closed (4429), and its
# user's sockets are refused for TUTOR_FLOOD_COOLDOWN_SECONDS: a flood stops costing the
# server a parse, a rate check and an error frame per frame.
TUTOR_FLOOD_REFUSALS = env.int("TUTOR_FLOOD_REFUSALS", 30)
TUTOR_FLOOD_WINDOW_SECONDS = env.float("TUTOR_FLOOD_WINDOW_SECONDS", 10.0)
TUTOR_FLOOD_COOLDOWN_SECONDS = env.int("TUTOR_FLOOD_COOLDOWN_SECONDS", 30)
# Checking an answer (or a tutor turn for a leak) runs in a pool of processes that is killed
# and restarted past this many seconds, so a costly expression cannot stall the server.
# The limit leaves room within the promised second for the round trip to the pool.
TUTOR_CHECK_TIMEOUT_SECONDS = env.float("TUTOR_CHECK_TIMEOUT_SECONDS", 0.8)
TUTOR_CHECK_WORKERS = env.int("TUTOR_CHECK_WORKERS", 2)
# After an answer that ran a checking process to its limit, its sender may only send plain
# numbers (checked without the pool) for this long.
TUTOR_COSTLY_ANSWER_COOLDOWN_SECONDS = env.float("TUTOR_COSTLY_ANSWER_COOLDOWN_SECONDS", 60.0)
# How much dialogue history goes into the prompt (characters, newest kept), and the largest
# share of that budget that teachers' pedagogy instructions may take.
TUTOR_HISTORY_CHAR_BUDGET = env.int("TUTOR_HISTORY_CHAR_BUDGET", 6000)
TUTOR_INSTRUCTIONS_SHARE = env.float("TUTOR_INSTRUCTIONS_SHARE", 0.25)

# Retraining (tutor/retraining, docs/retraining.md).
# The base weights the trainer loads (a folder or hub id; "default": the prepared SmolLM2).
TUTOR_BASE_MODEL = env.str("TUTOR_MODEL", "") or "default"
# Where jobs keep their dataset and checkpoints (one folder per job; a killed job resumes
# from it), and where finished adapters go, one folder per version name. vLLM must read
# TUTOR_ADAPTER_DIR at the same path (docker: the `adapters` volume).
TUTOR_TRAINING_DIR = env.path("TUTOR_TRAINING_DIR", VAR_DIR / "training")
TUTOR_ADAPTER_DIR = env.path("TUTOR_ADAPTER_DIR", VAR_DIR / "adapters")
# The vLLM server that rollouts and evaluations talk to (LoRA enabled); default: the tutor's
# (its first replica: this one is always a single URL).
TUTOR_TRAINING_BASE_URL = env.str("TUTOR_TRAINING_BASE_URL", "") or next(
    (url.strip() for url in TUTOR_MODEL_BASE_URL.split(",") if url.strip()), ""
)
# A running job writes a heartbeat this often; one silent for TUTOR_JOB_STALE_SECONDS has
# lost its worker, and the redelivered task resumes it from its last checkpoint.
TUTOR_JOB_HEARTBEAT_SECONDS = env.float("TUTOR_JOB_HEARTBEAT_SECONDS", 15.0)
TUTOR_JOB_STALE_SECONDS = env.float("TUTOR_JOB_STALE_SECONDS", 120.0)
# Fewest problems a job trains on; with "include the problem bank" the bank tops a small
# window up to this many.
TUTOR_TRAINING_MIN_PROBLEMS = env.int("TUTOR_TRAINING_MIN_PROBLEMS", 8)
# The function a job runs (tests swap in a fake trainer; another trainer can be plugged in).
TUTOR_TRAINING_FUNCTION = env.str("TUTOR_TRAINING_FUNCTION", "training.grpo.train")
# A job or evaluation that failed because the model server was unreachable (or timed out, or
# answered 5xx) goes back to the queue this many times, after this many seconds (doubled each
# time); an evaluation whose tasks lost more than this share of their items that way fails.
TUTOR_INFRA_RETRIES = env.int("TUTOR_INFRA_RETRIES", 3)
TUTOR_INFRA_RETRY_SECONDS = env.float("TUTOR_INFRA_RETRY_SECONDS", 30.0)
TUTOR_EVAL_MAX_INFRA_FAILURES = env.float("TUTOR_EVAL_MAX_INFRA_FAILURES", 0.1)
# The largest LoRA rank the model server accepts (vLLM --max-lora-rank): promotion refuses more.
TUTOR_MAX_LORA_RANK = env.int("TUTOR_MAX_LORA_RANK", 64)
# Evaluation defaults (training.evaluation.EvaluationConfig); the form can change them.
TUTOR_EVAL_LIMIT = env.int("TUTOR_EVAL_LIMIT", 20)
TUTOR_EVAL_REWARD_MODEL = env.str("TUTOR_EVAL_REWARD_MODEL", "") or None

# Login attempts (django-axes): a username and address are locked out after this many failures
# for AXES_COOLOFF_TIME hours; attempts are kept in the database, shared by all web processes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", 0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# ---- accounts (issue 15: sign-up, rosters, password reset, single sign-on; tutor/accounts) ----
# Sign-up with a class join code: every try counts per address (a class signing up behind one
# school address fits), and this many wrong codes lock an address out for an hour.
TUTOR_RATE_SIGNUPS_PER_HOUR = env.int("TUTOR_RATE_SIGNUPS_PER_HOUR", 60)
TUTOR_SIGNUP_CODE_FAILURES_PER_HOUR = env.int("TUTOR_SIGNUP_CODE_FAILURES_PER_HOUR", 10)
# Password reset mails, per requesting address and per recipient.
TUTOR_RATE_PASSWORD_RESETS_PER_HOUR = env.int("TUTOR_RATE_PASSWORD_RESETS_PER_HOUR", 5)
# A roster CSV (tutor/classes/roster.py): refused whole past these.
TUTOR_ROSTER_MAX_BYTES = env.int("TUTOR_ROSTER_MAX_BYTES", 64 * 1024)
TUTOR_ROSTER_MAX_ROWS = env.int("TUTOR_ROSTER_MAX_ROWS", 200)
# Accounts with a teacher-issued password reach only the password change page until they
# choose their own (after authentication, before django-axes' middleware, which stays last).
MIDDLEWARE.insert(
    MIDDLEWARE.index("axes.middleware.AxesMiddleware"),
    "tutor.accounts.middleware.PasswordChangeRequiredMiddleware",
)
# Mail (password reset): printed on the console unless an SMTP server is named.
EMAIL_HOST = env.str("EMAIL_HOST", "")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_PORT = env.int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", not EMAIL_USE_SSL and EMAIL_PORT == 587)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", 10.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "Math tutor <tutor@localhost>")
# Single sign-on through django-allauth (OpenID Connect, e.g. Google): on when a client id is
# set. Off, allauth is neither installed nor routed. New users it creates are students with no
# class; accounts are never matched by email (a provider's address cannot take over a teacher's
# account).
TUTOR_SSO_CLIENT_ID = env.str("TUTOR_SSO_CLIENT_ID", "")
TUTOR_SSO_CLIENT_SECRET = env.str("TUTOR_SSO_CLIENT_SECRET", "")
TUTOR_SSO = env.bool("TUTOR_SSO", bool(TUTOR_SSO_CLIENT_ID))
TUTOR_SSO_PROVIDER_ID = env.str("TUTOR_SSO_PROVIDER_ID", "google")
TUTOR_SSO_NAME = env.str("TUTOR_SSO_NAME", "Google")
TUTOR_SSO_SERVER_URL = env.str("TUTOR_SSO_SERVER_URL", "https://accounts.google.com")
if TUTOR_SSO:
    if not (TUTOR_SSO_CLIENT_ID and TUTOR_SSO_CLIENT_SECRET):
        raise ValueError("TUTOR_SSO needs TUTOR_SSO_CLIENT_ID and TUTOR_SSO_CLIENT_SECRET")
    INSTALLED_APPS += [
        "allauth",
        "allauth.account",
        "allauth.socialaccount",
        "allauth.socialaccount.providers.openid_connect",
    ]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("axes.middleware.AxesMiddleware"),
        "allauth.account.middleware.AccountMiddleware",
    )
    AUTHENTICATION_BACKENDS += ["allauth.account.auth_backends.AuthenticationBackend"]
    SOCIALACCOUNT_ONLY = True  # allauth's own local sign-up, login and reset pages are off
    ACCOUNT_EMAIL_VERIFICATION = "none"
    SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
    SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
    SOCIALACCOUNT_AUTO_SIGNUP = True
    SOCIALACCOUNT_STORE_TOKENS = False
    ACCOUNT_ADAPTER = "tutor.accounts.sso_adapters.AccountAdapter"
    SOCIALACCOUNT_ADAPTER = "tutor.accounts.sso_adapters.SocialAccountAdapter"
    SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": TUTOR_SSO_PROVIDER_ID,
                    "name": TUTOR_SSO_NAME,
                    "client_id": TUTOR_SSO_CLIENT_ID,
                    "secret": TUTOR_SSO_CLIENT_SECRET,
                    "settings": {"server_url": TUTOR_SSO_SERVER_URL},
                }
            ],
        }
    }
# ---- end of accounts ----

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}},
}

# HTTPS. Production (DATABASE_URL names a database server, or DJANGO_SECURE=1) is served over
# HTTPS, usually behind a TLS-terminating proxy: plain http is redirected, browsers are told to
# use HTTPS only (HSTS) and cookies travel only over HTTPS. The embedded default
# (scripts/start.sh: SQLite, plain http on 127.0.0.1) stays on http. DJANGO_SECURE=0 turns the
# whole set off; each setting also has its own variable. `manage.py check --deploy` passes
# with the production defaults.
_secure = env.bool("DJANGO_SECURE", not DEBUG and not _is_sqlite)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", _secure)
# Load balancers and container health checks probe over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", 31_536_000 if _secure else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", _secure)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", _secure)
# DJANGO_SECURE_COOKIES sets both; the two specific variables override it.
_secure_cookies = env.bool("DJANGO_SECURE_COOKIES", _secure)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", _secure_cookies)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", _secure_cookies)
# Behind a proxy that terminates TLS: the header it sets on HTTPS requests, as
# "X-Forwarded-Proto: https". Trust it only if the proxy always sets or strips it (uvicorn's
# --proxy-headers with FORWARDED_ALLOW_IPS does the same job at the server). Unset: no header
# is trusted.
_proxy_ssl_header = env.str("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    _header, _, _value = _proxy_ssl_header.partition(":")
    if not _value.strip():
        raise ValueError("DJANGO_SECURE_PROXY_SSL_HEADER must read 'Header-Name: value'")
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _header.strip().upper().replace("-", "_"),
        _value.strip(),
    )
# The host the proxy was asked for (X-Forwarded-Host) instead of the Host header: only behind a
# proxy that sets it. ALLOWED_HOSTS still applies.
USE_X_FORWARDED_HOST = env.bool("DJANGO_USE_X_FORWARDED_HOST", False)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Publishing a task must fail fast when the broker is down instead of stalling a chat reply.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2
