"""System checks. Their ids are public API and are never reused.

* ``textclass.E001``: a backend's class cannot be imported.
* ``textclass.E002``: ``DEFAULT_BACKEND`` names an alias that is not configured.
* ``textclass.E003``: a backend rejects its ``OPTIONS``.
* ``textclass.E004``: a numeric setting is out of range.
* ``textclass.E005``: ``DEFAULT_MODEL`` is not a valid Hub repository id.
* ``textclass.E006``: ``BACKENDS`` is not a dict of backend configurations.
* ``textclass.E007``: a backend's ``RATE_LIMIT`` is not like ``"300/minute"``.
* ``textclass.E008``: a backend's ``CALLS_IN_FLIGHT`` is not an integer >= 1.
* ``textclass.W001``: a URL points at the retired ``api-inference.huggingface.co`` host,
  ``textclass.W002``: a Hugging Face backend has no token, ``textclass.W008``: its
  ``READ_TIMEOUT`` is not above its ``SCALE_UP_TIMEOUT``, and ``textclass.W009``: its
  ``API_URL`` is a TEI route while ``BATCH`` is on; all from that backend's own
  :meth:`~django_textclass.backends.base.BaseBackend.check`, which every configured backend
  gets called once it accepts its ``OPTIONS``.
* ``textclass.W003``: ``TEXTCLASS`` has keys this version does not know.
* ``textclass.W004``: ``USE_TZ`` is off, so the daily roll-up does nothing.
* ``textclass.W005``: ``CIRCUIT_FAILURES`` is above ``MAX_ATTEMPTS``.
* ``textclass.W006`` (``check --deploy``): the Celery broker has no socket timeouts, so beat
  and the workers may hang on a broker that accepts connections but never answers.
* ``textclass.W007``: no Celery app of the project is loaded (Celery's fallback app is
  current), so wake-ups ignore ``CELERY_*`` and go to ``amqp://localhost:5672``.
* ``textclass.E040``: ``MODELS`` (the model registry) is not a dict of keys to entries;
  ``textclass.E041``: a key is not a valid key name; ``textclass.E042``: an entry is not a
  dict, has unknown keys, or its ``MODEL`` is missing or neither a Hub id nor an endpoint URL;
  ``textclass.E043``: its ``BACKEND`` is not a configured alias; ``textclass.E044``: its
  ``PARAMETERS`` are wrong; ``textclass.E045``: its ``REVISION`` is not a revision name.
* ``textclass.E010``-``E019`` and ``W010``-``W019``: the REST API, checked by
  :mod:`django_textclass.api.checks` (registered by the app config) when its URLs are mounted.
* ``textclass.E020``-``E029`` and ``W020``: registered content (``TEXTCLASS["REGISTRY"]``
  and ``django_textclass.register``), built by
  :meth:`django_textclass.content.registry.Registry.check` and listed in docs/content.md.
"""

from django.conf import settings
from django.core import checks

from django_textclass import catalog
from django_textclass.backends import load_backend_class
from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError
from django_textclass.services.pacing import parse_rate

INTEGER_SETTINGS = ("MAX_TEXT_LENGTH", "BATCH_SIZE", "MAX_ATTEMPTS", "CIRCUIT_FAILURES")
POSITIVE_SETTINGS = (*INTEGER_SETTINGS, "LEASE_SECONDS", "PUBLISH_TIMEOUT")
NON_NEGATIVE_SETTINGS = (
    "RETRY_BACKOFF_BASE",
    "RETRY_BACKOFF_MAX",
    "RETRY_HINT_MAX",
    "DISPATCH_GRACE_SECONDS",
    "RATE_LIMIT_WAIT",
    "CIRCUIT_OPEN_SECONDS",
    "CIRCUIT_OPEN_MAX",
    "PUBLISH_INTERVAL",
)
#: Settings that are None or a number >= 0.
OPTIONAL_NON_NEGATIVE_SETTINGS = ("CACHE_TTL", "RETRY_DEADLINE", "SWEEP_INTERVAL")


@checks.register()
def check_settings(app_configs=None, **kwargs):
    """Check the ``TEXTCLASS`` setting and every configured backend."""
    messages = []
    if not settings.USE_TZ:
        messages.append(
            checks.Warning(
                "The daily roll-up of django_textclass needs USE_TZ = True; without it the "
                "dashboard and the statistics API read every row, and the rollup task does "
                "nothing.",
                hint="Set USE_TZ = True (Django's default).",
                id="textclass.W004",
            )
        )
    unknown = app_settings.unknown_keys()
    if unknown:
        messages.append(
            checks.Warning(
                f"TEXTCLASS has unknown keys: {', '.join(unknown)}.",
                hint="See docs/settings.md for the supported keys.",
                id="textclass.W003",
            )
        )
    for name in POSITIVE_SETTINGS + NON_NEGATIVE_SETTINGS:
        value = getattr(app_settings, name)
        minimum = 1 if name in POSITIVE_SETTINGS else 0
        kinds = int if name in INTEGER_SETTINGS else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
            kind = "an integer" if name in INTEGER_SETTINGS else "a number"
            messages.append(
                checks.Error(
                    f"TEXTCLASS[{name!r}] must be {kind} >= {minimum}, not {value!r}.",
                    id="textclass.E004",
                )
            )
    for name in OPTIONAL_NON_NEGATIVE_SETTINGS:
        value = getattr(app_settings, name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and (not number or value < 0):
            messages.append(
                checks.Error(
                    f"TEXTCLASS[{name!r}] must be None or a number >= 0, not {value!r}.",
                    id="textclass.E004",
                )
            )
    if not [m for m in messages if m.id == "textclass.E004"] and (
        app_settings.CIRCUIT_FAILURES > app_settings.MAX_ATTEMPTS
    ):
        messages.append(
            checks.Warning(
                f"TEXTCLASS['CIRCUIT_FAILURES'] ({app_settings.CIRCUIT_FAILURES}) is above "
                f"MAX_ATTEMPTS ({app_settings.MAX_ATTEMPTS}): during an outage a text alone "
                "can run out of attempts before the circuit opens.",
                hint="Keep CIRCUIT_FAILURES <= MAX_ATTEMPTS.",
                id="textclass.W005",
            )
        )
    try:
        catalog.validate_name(app_settings.DEFAULT_MODEL)
    except InvalidInputError as exc:
        messages.append(
            checks.Error(
                f"TEXTCLASS['DEFAULT_MODEL'] {app_settings.DEFAULT_MODEL!r}: {exc.reason}.",
                id="textclass.E005",
            )
        )
    backends = app_settings.BACKENDS
    if not isinstance(backends, dict) or not all(isinstance(c, dict) for c in backends.values()):
        messages.append(
            checks.Error(
                "TEXTCLASS['BACKENDS'] must be a dict of aliases to "
                "{'BACKEND': ..., 'OPTIONS': ...}.",
                id="textclass.E006",
            )
        )
        return messages
    if app_settings.DEFAULT_BACKEND not in backends:
        messages.append(
            checks.Error(
                f"TEXTCLASS['DEFAULT_BACKEND'] is {app_settings.DEFAULT_BACKEND!r}, "
                "which is not an alias in TEXTCLASS['BACKENDS'].",
                id="textclass.E002",
            )
        )
    for alias, config in backends.items():
        messages.extend(_check_backend(alias, config))
    return messages


def _check_backend(alias, config):
    path = config.get("BACKEND", "") if isinstance(config, dict) else ""
    try:
        backend_class = load_backend_class(path)
    except TextClassConfigurationError as exc:
        return [
            checks.Error(
                f"TEXTCLASS backend {alias!r}: {exc}",
                hint="BACKEND must be the dotted path of a backend class, e.g. "
                "'django_textclass.backends.huggingface.Backend'.",
                id="textclass.E001",
            )
        ]
    try:
        parse_rate(config.get("RATE_LIMIT"))
    except ValueError as exc:
        return [checks.Error(f"TEXTCLASS backend {alias!r}: {exc}.", id="textclass.E007")]
    in_flight = config.get("CALLS_IN_FLIGHT", 1)
    if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
        return [
            checks.Error(
                f"TEXTCLASS backend {alias!r}: CALLS_IN_FLIGHT must be an integer >= 1, "
                f"not {in_flight!r}.",
                id="textclass.E008",
            )
        ]
    options = config.get("OPTIONS") or {}
    if not isinstance(options, dict):
        return [
            checks.Error(
                f"TEXTCLASS backend {alias!r}: OPTIONS must be a dict.",
                id="textclass.E003",
            )
        ]
    try:
        backend = backend_class(alias=alias, **options)
    except (TextClassConfigurationError, TypeError) as exc:
        return [
            checks.Error(
                f"TEXTCLASS backend {alias!r} rejects its OPTIONS: {exc}",
                id="textclass.E003",
            )
        ]
    try:
        return list(backend.check())
    finally:
        backend.close()


@checks.register()
def check_models(app_configs=None, **kwargs):
    """``textclass.E040``-``E045``: the model registry, ``TEXTCLASS["MODELS"]``."""
    models = app_settings.MODELS
    if not isinstance(models, dict):
        return [
            checks.Error(
                "TEXTCLASS['MODELS'] must be a dict of keys to {'MODEL': ..., 'BACKEND': ..., "
                f"'PARAMETERS': ..., 'REVISION': ...}}, not {type(models).__name__}.",
                id="textclass.E040",
            )
        ]
    return [
        checks.Error(f"{message}.", hint="See docs/models.md.", id=check_id)
        for name, spec in models.items()
        for check_id, message in catalog.problems(name, spec)
    ]


#: Per transport, the broker transport options that bound every socket wait.
SOCKET_TIMEOUT_OPTIONS = {
    "redis": ("socket_timeout",),
    "rediss": ("socket_timeout",),
    "amqp": ("read_timeout",),
    "pyamqp": ("read_timeout",),
    "amqps": ("read_timeout",),
}


@checks.register(checks.Tags.compatibility, deploy=True)
def check_broker_timeouts(app_configs=None, **kwargs):
    """``textclass.W006``: beat and the workers need socket timeouts on the broker.

    The app's own publishing has them whatever the settings (``PUBLISH_TIMEOUT``); beat's
    schedule and the workers' own connections follow the project's Celery settings.
    """
    from celery import current_app

    conf = current_app.conf
    transport = current_app.connection_for_write().transport_cls
    wanted = SOCKET_TIMEOUT_OPTIONS.get(transport)
    options = conf.broker_transport_options or {}
    if wanted is None or all(options.get(name) for name in wanted):
        return []
    return [
        checks.Warning(
            f"The Celery broker ({transport}) has no {' or '.join(wanted)} in "
            "broker_transport_options: beat and the workers may wait for ever on a broker that "
            "accepts connections but never answers.",
            hint=f"Set CELERY_BROKER_TRANSPORT_OPTIONS = {{{wanted[0]!r}: 10, ...}} (seconds).",
            id="textclass.W006",
        )
    ]


@checks.register(checks.Tags.compatibility)
def check_celery_app(app_configs=None, **kwargs):
    """``textclass.W007``: the project's Celery app must be loaded whenever Django starts.

    The app's tasks are shared tasks: they publish through the current Celery app. Without
    the project's (created in ``proj/celery.py`` and imported in ``proj/__init__.py``), the
    current app is Celery's fallback, which has read none of the ``CELERY_*`` settings.
    """
    from celery import _state

    app = _state.get_current_app()
    # The fallback is the one app Celery builds itself: named "default", with no fixups (an
    # app a project creates gets the Django fixup whenever DJANGO_SETTINGS_MODULE is set).
    if app.main != "default" or app.fixups:
        return []
    return [
        checks.Warning(
            "No Celery app of the project is loaded, so Celery's fallback app is current: it "
            "ignores the CELERY_* settings, and the wake-ups of django_textclass go to "
            "amqp://guest@localhost:5672// (requests stay pending until a sweep that never runs).",
            hint="Create the app in proj/celery.py and import it in proj/__init__.py "
            "(from .celery import app as celery_app); see docs/installation.md, "
            "'The project's Celery app'.",
            id="textclass.W007",
        )
    ]
