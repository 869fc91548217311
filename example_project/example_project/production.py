"""Settings of the example project in production (``example_project.production``).

The demo's settings (``settings.py``) with what a deployment needs on top. Nothing secret is
written here: every secret and address comes from the environment, and a missing one stops
the process at start with the variable's name instead of a demo default.
``manage.py check --deploy`` is clean with these settings (tests/test_deploy.py); what each
one is for is in docs/installation.md ("Production settings").

Required environment variables:

``DJANGO_SECRET_KEY``
    At least 50 characters, random.
``DJANGO_ALLOWED_HOSTS``
    Comma-separated host names the site answers to.
``DATABASE_URL``
    ``postgres://user:password@host:5432/name`` (see ``settings.py``).
``CELERY_BROKER_URL``
    ``redis://...`` or ``amqp://...``; not the filesystem broker (one host only).
``REDIS_URL``
    The cache every web process shares (the API's throttle counters).
``HF_TOKEN``
    The Hugging Face token. Checked for here, never copied into a setting: the backend reads
    the environment itself, so the token is in no settings dump (``diffsettings``, an error
    report).

Optional: ``DJANGO_CSRF_TRUSTED_ORIGINS`` (comma-separated ``https://...``),
``DJANGO_BEHIND_TLS_PROXY`` (1 when a proxy terminates TLS and sets
``X-Forwarded-Proto``), ``DJANGO_HSTS_SECONDS`` (default 3600), ``DJANGO_HSTS_PRELOAD``.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from example_project.settings import *  # noqa: F403
from example_project.settings import TEXTCLASS, env_bool


def required(name):
    """The environment variable ``name``; ImproperlyConfigured naming it when unset or blank."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in the environment in production.")
    return value


def listed(name):
    """A comma-separated environment variable as a list, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# --- Core ---------------------------------------------------------------------------

DEBUG = False
SECRET_KEY = required("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = [host.strip() for host in required("DJANGO_ALLOWED_HOSTS").split(",")]
CSRF_TRUSTED_ORIGINS = listed("DJANGO_CSRF_TRUSTED_ORIGINS")
required("DATABASE_URL")  # read by settings.py; here only to refuse the SQLite default

# --- HTTPS --------------------------------------------------------------------------

SECURE_SSL_REDIRECT = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Start low: a browser that saw the header refuses plain HTTP for that long, even if the
# certificate goes away. Raise it (a year: 31536000) once HTTPS is known to work.
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "3600"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
if not SECURE_HSTS_PRELOAD:
    # Preloading puts the whole domain into the browsers' own lists, for months: a decision
    # for the domain's owner (DJANGO_HSTS_PRELOAD=1), not a default of an example.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    # Only behind a proxy that always sets (or strips) X-Forwarded-Proto: otherwise a client
    # could claim HTTPS itself.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Celery: the broker and the tasks' time limits -----------------------------------

CELERY_BROKER_URL = required("CELERY_BROKER_URL")
if CELERY_BROKER_URL.startswith(("textclass-filesystem://", "filesystem://")):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL: the filesystem broker serves one host; use Redis or RabbitMQ."
    )
# A broker that accepts connections and never answers must not hang beat or a worker
# (check textclass.W006); the app's own publishing is bounded by PUBLISH_TIMEOUT.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        # An unacknowledged message goes to another worker after this; above the longest
        # countdown of a retry (300 s by default) and the tasks' hard time limit.
        "visibility_timeout": 3600,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"read_timeout": 10, "write_timeout": 10}
# A run streams for 5 s, then waits for its last calls (CONNECT_TIMEOUT + READ_TIMEOUT,
# 35 s by default): 300 s is far past any healthy run. Past it, the pool process is killed
# and the sweep hands its requests to another run once their lease is over.
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
# The roll-up's daily verification reads the whole table: more time for it.
CELERY_TASK_ANNOTATIONS = {
    "django_textclass.rollup": {"soft_time_limit": 1700, "time_limit": 1800},
}

# --- The shared cache, the backend and its token -------------------------------------

# The API's per-user throttle counts here: one Redis for every web process.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": required("REDIS_URL"),
    }
}

if not os.environ.get("HF_TOKEN", "").strip():
    raise ImproperlyConfigured(
        "HF_TOKEN must be set in the environment in production (a fine-grained token with "
        "'Make calls to Inference Providers')."
    )
TEXTCLASS = {
    **TEXTCLASS,
    "BACKENDS": {
        "default": {
            "BACKEND": "django_textclass.backends.huggingface.Backend",
            # No TOKEN here: the backend reads HF_TOKEN itself. TEXTCLASS_API_URL still points
            # it at another endpoint (a dedicated one, say).
            "OPTIONS": {
                key: value
                for key, value in TEXTCLASS["BACKENDS"]["default"]["OPTIONS"].items()
                if key == "API_URL"
            },
        }
    },
}
