"""The one ``TEXTCLASS`` setting, read lazily.

Every key and its default is listed in :data:`DEFAULTS` and documented in
``docs/settings.md``. Values are read on first access and dropped again whenever
Django sends ``setting_changed`` for ``TEXTCLASS`` (``override_settings`` in tests),
so nothing here is ever captured at import time.

    from django_textclass.conf import app_settings
    app_settings.BATCH_SIZE
"""

from django.conf import settings
from django.core.signals import setting_changed

DEFAULT_MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"

DEFAULTS = {
    # Backends by alias, the way CACHES is configured.
    "BACKENDS": {
        "default": {
            "BACKEND": "django_textclass.backends.huggingface.Backend",
            "OPTIONS": {},
        },
    },
    "DEFAULT_BACKEND": "default",
    "DEFAULT_MODEL": DEFAULT_MODEL,
    # The model registry: stable keys ("sentiment") -> {"BACKEND", "MODEL", "PARAMETERS",
    # "REVISION"}; a key is accepted wherever a model id is (docs/models.md).
    "MODELS": {},
    # Longest text accepted by submit(), in characters.
    "MAX_TEXT_LENGTH": 20_000,
    # Most requests one worker task claims at once (a backend may send fewer per call).
    "BATCH_SIZE": 128,
    # Attempts per request (the first call included) before it fails for good.
    "MAX_ATTEMPTS": 5,
    # Exponential backoff: BASE * 2**(attempt - 1), capped at MAX, then a random
    # value between half and all of it ("equal jitter").
    "RETRY_BACKOFF_BASE": 2.0,
    "RETRY_BACKOFF_MAX": 300.0,
    # Cap on a server's own delay hint (estimated_time, Retry-After, RateLimit).
    "RETRY_HINT_MAX": 300.0,
    # A transient error fails a request submitted longer ago than this (seconds; None:
    # never). Rate limits never do; an outage's waits spend no attempt (docs/pipeline.md).
    "RETRY_DEADLINE": 24 * 3600,
    # Seconds every worker waits after a 429 (or a 503 while loading) that gave no hint.
    "RATE_LIMIT_WAIT": 10.0,
    # Calls in a row that fail with a connection error, a timeout or a 5xx (from any
    # worker) before the backend's circuit opens; the first opening lasts
    # CIRCUIT_OPEN_SECONDS, each one in a row twice as long, up to CIRCUIT_OPEN_MAX.
    "CIRCUIT_FAILURES": 5,
    "CIRCUIT_OPEN_SECONDS": 30.0,
    "CIRCUIT_OPEN_MAX": 600.0,
    # Reuse a stored result for the same text, model and parameters for this many
    # seconds; None keeps results forever, 0 turns the cache off.
    "CACHE_TTL": 7 * 24 * 3600,
    # A running request whose worker has not renewed its lease within this many seconds
    # is handed back to the queue by the sweep (its worker is presumed dead). Renewed
    # before each call and every third of it while a call is out.
    "LEASE_SECONDS": 60,
    # The sweep re-sends pending requests that have been due for this long.
    "DISPATCH_GRACE_SECONDS": 30,
    # Workers sweep themselves when no sweep ran for this many seconds (beat's may be stuck
    # behind a backlog); None leaves it to beat alone.
    "SWEEP_INTERVAL": 60.0,
    # --- background classification of your models (docs/content.md) ---
    # Registrations by "app_label.Model": {"FIELDS": [...], "MODELS": [...], ...}.
    "REGISTRY": {},
    # Deleting a registered object cancels its pending requests; True also deletes
    # its whole classification history.
    "DELETE_HISTORY_WITH_SOURCE": False,
    # Long-text policy of registrations that set none: a name (reject, truncate,
    # truncate_head_tail, split, split_max) or a dict with POLICY and options.
    "LONG_TEXT_POLICY": "truncate",
    # Celery queue for the app's tasks; None uses the project's default queue.
    "QUEUE": None,
    # Seconds each socket operation of the app's own publishing may take (connect, send,
    # read) before it gives up and leaves the wake-up to the sweep.
    "PUBLISH_TIMEOUT": 2.0,
    # Least seconds between two wake-up messages one process publishes after commits: the
    # wake-ups committed meanwhile wait for the end of the interval and share a message.
    "PUBLISH_INTERVAL": 0.05,
    # --- health (django_textclass.health; documented in docs/operations.md) ---
    # A secret that lets a monitor read the health view without a staff login
    # (Authorization: Bearer <token>); None: staff only.
    "HEALTH_TOKEN": None,
    # Alert thresholds of the health report, merged over health.DEFAULT_THRESHOLDS.
    "HEALTH_THRESHOLDS": {},
    # --- REST API (django_textclass.api; documented in docs/api.md) ---
    # Most texts in one POST /classifications/ or one drop-in call.
    "API_MAX_BATCH": 100,
    # Largest request body the API parses, in bytes (413 beyond).
    "API_MAX_BODY_BYTES": 2 * 1024 * 1024,
    # Cap on the "wait" a client may ask for on POST /classifications/, in seconds.
    "API_MAX_WAIT_SECONDS": 30.0,
    # How often a waiting request looks at the database, in seconds.
    "API_WAIT_POLL_SECONDS": 0.1,
    # Cursor pagination of GET /classifications/ (page_size may not exceed the max).
    "API_PAGE_SIZE": 50,
    "API_MAX_PAGE_SIZE": 200,
    # Access checks of every endpoint (dotted paths); None: the project's
    # REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"]. Rows stay scoped to their owner either way.
    "API_PERMISSION_CLASSES": None,
    # Staff users see (and may retry or cancel) every user's requests.
    "API_STAFF_SEES_ALL": True,
    # Throttles of every endpoint (dotted paths); None: the project's
    # REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]. The submit throttle below comes on top.
    "API_THROTTLE_CLASSES": None,
    # Per-user rate of the submitting endpoints ("60/minute"); None turns it off.
    "API_THROTTLE_RATE": "60/minute",
    # CACHES alias holding the throttle counters; share it between processes.
    "API_THROTTLE_CACHE": "default",
    # Seconds an Idempotency-Key is remembered.
    "API_IDEMPOTENCY_TTL": 24 * 3600,
    # Drop-in endpoint: how long it waits for the worker before answering 503, in
    # seconds, and how long with the header x-wait-for-model: true.
    "INFERENCE_WAIT_SECONDS": 10.0,
    "INFERENCE_WAIT_FOR_MODEL_SECONDS": 60.0,
}


class AppSettings:
    """Attribute access to ``TEXTCLASS``, with defaults, cached until settings change."""

    def __init__(self, defaults=None):
        self._defaults = defaults or DEFAULTS
        self._cached = set()

    @property
    def user_settings(self):
        """The project's ``TEXTCLASS`` dict (empty when unset)."""
        if not hasattr(self, "_user_settings"):
            self._user_settings = getattr(settings, "TEXTCLASS", None) or {}
        return self._user_settings

    def __getattr__(self, name):
        if name not in self._defaults:
            raise AttributeError(f"Invalid TEXTCLASS setting: {name!r}")
        value = self.user_settings.get(name, self._defaults[name])
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def read(self, name):
        """Return the current value of ``name``, from settings, bypassing the cache.

        For ``setting_changed`` receivers of other modules: they may run before this
        module's own receiver has dropped the cache.
        """
        if name not in self._defaults:
            raise AttributeError(f"Invalid TEXTCLASS setting: {name!r}")
        user_settings = getattr(settings, "TEXTCLASS", None) or {}
        return user_settings.get(name, self._defaults[name])

    def unknown_keys(self):
        """Return the keys of ``TEXTCLASS`` that this version does not know."""
        return sorted(set(self.user_settings) - set(self._defaults))

    def reload(self):
        """Forget every cached value; the next access reads settings again."""
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            del self._user_settings


app_settings = AppSettings()


def _reload(*, setting, **kwargs):
    # Only the cache of this module: every other module that keeps state built from
    # TEXTCLASS (backends, the content registry) connects a receiver of its own.
    if setting == "TEXTCLASS":
        app_settings.reload()


setting_changed.connect(_reload)
