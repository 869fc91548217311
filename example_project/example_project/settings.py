"""Settings of the example project.

Everything that differs between a laptop demo and a real deployment comes from the
environment. With nothing set, the project runs with no service at all: SQLite in
``var/db.sqlite3``, kombu's filesystem broker (``textclass-filesystem://``, the app's
version of it) in ``var/broker/``, and the offline lexicon backend (no network, no token).

Environment variables:

``DATABASE_URL``
    Read by dj-database-url: ``postgres://user:password@host:5432/name`` (query parameters
    such as ``?sslmode=require`` become ``OPTIONS``), or ``sqlite:////absolute/path.sqlite3``.
``CELERY_BROKER_URL``
    e.g. ``redis://127.0.0.1:6379/0`` or ``amqp://guest:guest@127.0.0.1//``.
    Default: ``textclass-filesystem://``, kombu's filesystem broker as the app ships it
    (django_textclass.brokers.filesystem; one host only, see the docs on its limits).
``TEXTCLASS_BACKEND``
    ``huggingface`` or ``offline``. Default: ``huggingface`` if ``HF_TOKEN`` is set,
    else ``offline``.
``HF_TOKEN``
    The Hugging Face token. The huggingface backend reads it from the environment itself;
    it is never copied into these settings.
``TEXTCLASS_API_URL``
    The BASE URL of the Inference API, e.g. ``https://router.huggingface.co/hf-inference``
    or a loopback emulator ``http://127.0.0.1:8765``; ``/models/{model_id}`` is appended.
``REDIS_URL``
    e.g. ``redis://127.0.0.1:6379/1``: the cache (the API's throttle counters). Default: a
    file cache in ``var/cache/``.
``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG`` (default on), ``DJANGO_ALLOWED_HOSTS``
    (comma-separated, default ``127.0.0.1,localhost``).
``DEMO_VAR_DIR``
    Where the demo keeps its files (default ``example_project/var/``).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent  # the example_project/ folder
# Git-ignored: database, broker folders, beat schedule, cache. DEMO_VAR_DIR moves them (the
# demo's own tests run it in a folder of theirs).
VAR_DIR = Path(os.environ.get("DEMO_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name, default):
    """Read a yes/no environment variable (1/true/yes/on, case-insensitive)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# --- Core ---------------------------------------------------------------------------

# DEMO ONLY: this default key is public. Set DJANGO_SECRET_KEY anywhere that matters.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-DEMO-ONLY-do-not-use-this-key-in-production"
)
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",  # tokens for the API (manage.py drf_create_token)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc files served locally, no CDN
    "django_textclass",
    "demo",
    "reviews",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Database -----------------------------------------------------------------------

# SQLite shared by the web process and a separate worker process: wait for the lock
# instead of failing at once, let readers run beside the single writer (WAL), and take
# the write lock when a transaction starts so that a read->write upgrade cannot fail
# with "database is locked" (transaction_mode needs Django >= 5.1).
SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


# DATABASE_URL, or SQLite under var/; SQLite gets the options above.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{(VAR_DIR / 'db.sqlite3').as_posix()}",
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {**SQLITE_OPTIONS, **DATABASES["default"].get("OPTIONS", {})}

# --- Celery -------------------------------------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "textclass-filesystem://"
if CELERY_BROKER_URL.startswith(("textclass-filesystem://", "filesystem://")):
    # kombu's filesystem transport (textclass-filesystem:// is the app's, which publishes
    # whole files; see docs/pipeline.md): producer and consumer meet in ONE folder, so "in"
    # and "out" are the same path. It creates none of them itself. Its limits (no
    # redelivery after a SIGKILL, polling) are why the app's sweep re-dispatches stuck
    # requests.
    BROKER_DIR = VAR_DIR / "broker"
    BROKER_QUEUE_DIR = BROKER_DIR / "queue"
    for folder in (BROKER_QUEUE_DIR, BROKER_DIR / "processed", BROKER_DIR / "control"):
        folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_QUEUE_DIR),
        "data_folder_out": str(BROKER_QUEUE_DIR),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # Exchange tables; kombu's default is a "control" folder in the current directory.
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.5,
    }
    # Remote control (celery inspect/control) rides on fanout queues whose unread
    # messages pile up as files with this transport; the demo does not need it.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# The database row is the result; no result backend is configured.
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    # Finds requests whose wake-up message was lost and dispatches them again.
    "textclass-sweep": {"task": "django_textclass.sweep", "schedule": 30.0},
    # Sums closed days for the dashboard; once a day it also checks them against the table.
    "textclass-rollup": {"task": "django_textclass.rollup", "schedule": 600.0},
    "textclass-rollup-verify": {
        "task": "django_textclass.rollup",
        "schedule": 86400.0,
        "kwargs": {"verify": True},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- django-textclass ---------------------------------------------------------------

_default_backend = "huggingface" if os.environ.get("HF_TOKEN") else "offline"
TEXTCLASS_BACKEND_NAME = (os.environ.get("TEXTCLASS_BACKEND") or _default_backend).strip().lower()
if TEXTCLASS_BACKEND_NAME not in {"huggingface", "offline"}:
    raise ImproperlyConfigured(
        f"TEXTCLASS_BACKEND must be 'huggingface' or 'offline', not {TEXTCLASS_BACKEND_NAME!r}."
    )

_textclass_options = {}
if TEXTCLASS_BACKEND_NAME == "huggingface" and os.environ.get("TEXTCLASS_API_URL"):
    # The app wants a URL template; the environment gives the base URL.
    _textclass_options["API_URL"] = (
        os.environ["TEXTCLASS_API_URL"].strip().rstrip("/") + "/models/{model_id}"
    )

TEXTCLASS = {
    "BACKENDS": {
        "default": {
            "BACKEND": f"django_textclass.backends.{TEXTCLASS_BACKEND_NAME}.Backend",
            "OPTIONS": _textclass_options,
        },
    },
}

# --- REST framework -----------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "django-textclass API",
    "DESCRIPTION": "Classify texts in the background, read results, history and statistics; "
    "POST /api/models/{model_id} speaks the Hugging Face Inference API's own format.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The API's per-user throttle counts in this cache, which every web process must share:
# Redis when REDIS_URL is set, else files under var/ (one host, no server needed).
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Logging ------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {
            "format": "[{asctime}] {levelname} {name} ({processName}): {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "console"},
    },
    "loggers": {
        # propagate=False: the Celery worker also puts a handler on the root logger.
        "django_textclass": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
