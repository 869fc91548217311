"""Settings for the test suite and for the Celery worker the integration tests start.

Environment:
    TEXTCLASS_TEST_DB: ``sqlite`` (default) or ``postgres`` (127.0.0.1:5432, user postgres).
    TEXTCLASS_TEST_BROKER: ``filesystem`` (default, no server: the app's
        ``textclass-filesystem://`` transport), ``redis`` or ``amqp``.
    TEXTCLASS_TEST_API_URL: base URL of the loopback Inference API emulator (set by the
        fixture that starts the worker); every HTTP backend alias points at it.
    TEXTCLASS_TEST_WORKER: set in the worker process, which must use the test database.
    TEXTCLASS_TEST_MAX_BATCH, TEXTCLASS_TEST_CALLS_IN_FLIGHT: the default backend's
        ``MAX_BATCH_SIZE`` (8) and ``CALLS_IN_FLIGHT`` (its own default, 4).
    TEXTCLASS_TEST_PRODUCTION_TIMING: keep the default sweep interval and dispatch grace
        (the suite shortens them so that recovery scenarios finish in seconds), and no API
        throttle (the benchmarks).
    TEXTCLASS_TEST_QUEUE: the Celery queue (default ``textclass-test-<run id>``); the fault
        suite gives each scenario's processes one of their own.
    TEXTCLASS_TEST_LEASE_SECONDS: ``LEASE_SECONDS`` (60); the fault suite's workers use 6.
    TEXTCLASS_TEST_NO_THROTTLE: no API throttle (a served process under the load scenario).
    TEXTCLASS_TEST_COUNT_QUERIES: a directory; each worker process writes there how many SQL
        statements it has sent (tests/celery_app.py), for the benchmarks.
    TEXTCLASS_TEST_HF_TOKEN: the default backend's token (the token-leak test's canary).
    TEXTCLASS_TEST_LOG_LEVEL: the ``django_textclass`` loggers' level (default INFO).
    TEXTCLASS_TEST_BROKER_KEEP: a directory; a worker on the filesystem broker moves each
        message it took there instead of deleting it (the token-leak test reads them).
    TEXTCLASS_TEST_REDBEAT_LOCK: beat runs celery-redbeat's scheduler, with a lock of this many
        seconds, in keys of the run's own (tests/integration/test_beat_ha.py).
"""

import os
import tempfile
from pathlib import Path

# One directory per test run, shared with the worker processes through the environment.
RUN_DIR = Path(
    os.environ.setdefault("TEXTCLASS_TEST_RUN_DIR", tempfile.mkdtemp(prefix="textclass-"))
)
# Several runs may share one PostgreSQL and one broker (parallel tox envs, two checkouts):
# each run gets its own test database and its own queue.
RUN_ID = os.environ.setdefault("TEXTCLASS_TEST_RUN_ID", RUN_DIR.name.rsplit("-", 1)[-1][:12])
IN_WORKER = bool(os.environ.get("TEXTCLASS_TEST_WORKER"))
DB_KIND = os.environ.get("TEXTCLASS_TEST_DB", "sqlite")
BROKER_KIND = os.environ.get("TEXTCLASS_TEST_BROKER", "filesystem")

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"  # pytest-django's live_server needs one
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"  # the app pins its own; this proves it

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "health_check",  # its HTML page's template (tests/health/)
    "django_textclass",
    "tests.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if DB_KIND == "postgres":
    _test_name = f"test_textclass_{RUN_ID}".lower()
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _test_name if IN_WORKER else "test",
            "USER": os.environ.get("TEXTCLASS_TEST_PG_USER", "postgres"),
            "HOST": "127.0.0.1",
            "PORT": 5432,
            "TEST": {"NAME": _test_name},
            # Workers keep their connections (docs/performance.md); tests open and close theirs.
            "CONN_MAX_AGE": 300 if IN_WORKER else 0,
            "CONN_HEALTH_CHECKS": True,
        }
    }
    if os.environ.get("TEXTCLASS_TEST_DB_POOL"):
        # A server under ASGI: each request runs in a thread of its own, so connections are
        # borrowed from a pool instead of kept per thread (docs/deployment.md).
        DATABASES["default"].update(CONN_MAX_AGE=0, OPTIONS={"pool": {"max_size": 16}})
elif DB_KIND == "sqlite":
    # A file, not :memory:, so the worker process sees the same database.
    _test_file = str(RUN_DIR / "test.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _test_file if IN_WORKER else str(RUN_DIR / "main.sqlite3"),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": _test_file},
        }
    }
else:
    raise RuntimeError(f"TEXTCLASS_TEST_DB must be sqlite or postgres, not {DB_KIND!r}")

if BROKER_KIND == "filesystem":
    _queue = RUN_DIR / "broker"
    _queue.mkdir(exist_ok=True)
    # kombu's filesystem transport with whole-file publishing (django_textclass.brokers);
    # tests/celery_app.py registers the scheme, as a project's Celery module does.
    CELERY_BROKER_URL = "textclass-filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "polling_interval": 0.1,
        "control_folder": str(RUN_DIR / "broker-control"),
    }
    if os.environ.get("TEXTCLASS_TEST_BROKER_KEEP"):
        CELERY_BROKER_TRANSPORT_OPTIONS.update(
            store_processed=True,
            processed_folder=os.environ["TEXTCLASS_TEST_BROKER_KEEP"],
        )
elif BROKER_KIND == "redis":
    CELERY_BROKER_URL = os.environ.get("TEXTCLASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
elif BROKER_KIND == "amqp":
    CELERY_BROKER_URL = os.environ.get(
        "TEXTCLASS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"
    )
else:
    raise RuntimeError(f"TEXTCLASS_TEST_BROKER must be filesystem, redis or amqp: {BROKER_KIND!r}")

# A process whose broker is down (the broker-outage test points this at a closed port).
CELERY_BROKER_URL = os.environ.get("TEXTCLASS_TEST_BROKER_URL", CELERY_BROKER_URL)
if os.environ.get("TEXTCLASS_TEST_BROKER_SOCKET_TIMEOUT"):
    # What docs/settings.md (check W006) asks of a site: socket timeouts for beat and workers.
    _timeout = float(os.environ["TEXTCLASS_TEST_BROKER_SOCKET_TIMEOUT"])
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_timeout": _timeout,
        "socket_connect_timeout": _timeout,
    }
# The fault suite gives each scenario a queue of its own (nothing a killed process left
# queued reaches the next scenario's workers).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TEXTCLASS_TEST_QUEUE") or f"textclass-test-{RUN_ID}"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

_API_URL = os.environ.get("TEXTCLASS_TEST_API_URL", "http://127.0.0.1:9")
_HF = "django_textclass.backends.huggingface.Backend"
_TOKEN = os.environ.get("TEXTCLASS_TEST_HF_TOKEN", "hf_test_token_not_secret")
TEXTCLASS = {
    "BACKENDS": {
        "default": {
            "BACKEND": _HF,
            "OPTIONS": {
                "API_URL": _API_URL + "/models/{model_id}",
                "TOKEN": _TOKEN,
                "MAX_BATCH_SIZE": int(os.environ.get("TEXTCLASS_TEST_MAX_BATCH", "8")),
                "READ_TIMEOUT": 5,
            },
            # Calls one worker run keeps out at once (the backend's default: 4).
            **(
                {"CALLS_IN_FLIGHT": int(os.environ["TEXTCLASS_TEST_CALLS_IN_FLIGHT"])}
                if os.environ.get("TEXTCLASS_TEST_CALLS_IN_FLIGHT")
                else {}
            ),
        },
        "offline": {"BACKEND": "django_textclass.backends.offline.Backend"},
        # The emulator's other faces (tests/integration/test_endpoints.py): its TEI mode
        # through the TEI backend, and through the Hugging Face backend at TEI's `/` (the
        # trap of a list read as a pair); its model route as a dedicated endpoint.
        "tei": {
            "BACKEND": "django_textclass.backends.tei.Backend",
            "OPTIONS": {"URL": _API_URL, "READ_TIMEOUT": 5},
        },
        "tei-root": {
            "BACKEND": _HF,
            "OPTIONS": {
                "API_URL": _API_URL + "/",
                "TOKEN": _TOKEN,
                "MAX_BATCH_SIZE": 8,
                "READ_TIMEOUT": 5,
            },
        },
        "endpoint": {
            "BACKEND": _HF,
            "OPTIONS": {
                "API_URL": _API_URL + "/models/distilbert/distilbert-base-uncased-finetuned-sst-2"
                "-english",
                "TOKEN": _TOKEN,
                "SCALE_UP_TIMEOUT": 3,
                "READ_TIMEOUT": 5,
            },
        },
    },
    # Short waits so retry scenarios finish in seconds.
    "MAX_ATTEMPTS": 4,
    "RETRY_BACKOFF_BASE": 0.2,
    "RETRY_BACKOFF_MAX": 1.0,
    "RETRY_HINT_MAX": 5.0,
    "LEASE_SECONDS": int(os.environ.get("TEXTCLASS_TEST_LEASE_SECONDS", "60")),
    "DISPATCH_GRACE_SECONDS": 2,
    "RATE_LIMIT_WAIT": 1.0,
    "CIRCUIT_FAILURES": 3,
    "CIRCUIT_OPEN_SECONDS": 1.0,
    "CIRCUIT_OPEN_MAX": 4.0,
    "SWEEP_INTERVAL": 1.0,
}
# The local model backend's end-to-end test (tests/integration/test_local_model.py) saves
# its tiny model in the run's folder. Only the workers have these aliases in their settings
# (the test adds them to its own): building one loads nothing, but `manage.py check` in the
# test process would report the folder missing before that test has written it.
LOCAL_MODEL_BACKENDS = {
    "local": {
        "BACKEND": "django_textclass.backends.local.Backend",
        "OPTIONS": {"MODEL_PATH": str(RUN_DIR / "local-model"), "THREADS": 1, "BATCH_SIZE": 4},
    },
    "local-missing": {
        "BACKEND": "django_textclass.backends.local.Backend",
        "OPTIONS": {"MODEL_PATH": str(RUN_DIR / "no-such-model")},
    },
}
if IN_WORKER:
    TEXTCLASS["BACKENDS"].update(LOCAL_MODEL_BACKENDS)
if os.environ.get("TEXTCLASS_TEST_INFERENCE_WAIT"):  # a served process's drop-in wait
    TEXTCLASS["INFERENCE_WAIT_SECONDS"] = float(os.environ["TEXTCLASS_TEST_INFERENCE_WAIT"])
if os.environ.get("TEXTCLASS_TEST_NO_THROTTLE"):  # a served process under a load test
    TEXTCLASS["API_THROTTLE_RATE"] = None
if os.environ.get("TEXTCLASS_TEST_PRODUCTION_TIMING"):  # the benchmarks: the defaults
    del TEXTCLASS["DISPATCH_GRACE_SECONDS"], TEXTCLASS["SWEEP_INTERVAL"]
    TEXTCLASS["API_THROTTLE_RATE"] = None  # a benchmark's client is not a user to throttle

# The REST API (django_textclass.api): session + token authentication as a project would
# have; the throttle counters in a cache every process of the run shares (the live server
# thread, the test process) without a server.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    # The API follows the project's defaults (TEXTCLASS["API_PERMISSION_CLASSES"] is None).
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(RUN_DIR / "cache"),
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_textclass": {
            "handlers": ["console"],
            "level": os.environ.get("TEXTCLASS_TEST_LOG_LEVEL", "INFO"),
        },
        # A 500 in a served process (runserver, uvicorn) shows its traceback in the log.
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}

# The sweep and the roll-up, as a project schedules them; the beat tests shorten the
# intervals.
CELERY_BEAT_SCHEDULE = {
    "textclass-sweep": {
        "task": "django_textclass.sweep",
        "schedule": float(os.environ.get("TEXTCLASS_TEST_BEAT_INTERVAL", "30")),
    },
    "textclass-rollup": {
        "task": "django_textclass.rollup",
        "schedule": float(os.environ.get("TEXTCLASS_TEST_BEAT_INTERVAL", "600")),
    },
}
if os.environ.get("TEXTCLASS_TEST_REDBEAT_LOCK"):
    # Beat with celery-redbeat (the ha-beat extra, docs/deployment.md): the schedule and a
    # lock in Redis, so that of several beats only the lock's holder sends. Its keys are this
    # run's own. A beat that waits for the lock looks again every max loop interval.
    CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
    CELERY_REDBEAT_REDIS_URL = os.environ.get(
        "TEXTCLASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"
    )
    CELERY_REDBEAT_KEY_PREFIX = f"textclass-test-{RUN_ID}-redbeat"
    CELERY_REDBEAT_LOCK_TIMEOUT = int(os.environ["TEXTCLASS_TEST_REDBEAT_LOCK"])
    CELERY_BEAT_MAX_LOOP_INTERVAL = float(os.environ.get("TEXTCLASS_TEST_BEAT_INTERVAL", "5"))
