"""System checks of the REST API (ids ``textclass.E010``-``E019``, ``W010``-``W019``).

They run only when the API's URLs are mounted (the ``textclass_api`` namespace is in the
project's URLconf): a project that does not serve the API has nothing to fix in it.

* ``textclass.E010``: an ``API_*`` / ``INFERENCE_*`` number is out of range.
* ``textclass.E011``: ``API_THROTTLE_RATE`` is not a rate such as ``"60/minute"``.
* ``textclass.E012``: ``API_THROTTLE_CACHE`` is not an alias in ``CACHES``.
* ``textclass.E013``: an ``API_PERMISSION_CLASSES`` / ``API_THROTTLE_CLASSES`` entry cannot
  be imported.
* ``textclass.E014``: ``rest_framework`` is not in ``INSTALLED_APPS`` (the browsable API
  has no templates).
* ``textclass.E015``: ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` is not drf-spectacular's
  ``AutoSchema`` (the schema endpoint fails).
* ``textclass.W010`` (``check --deploy``): the throttle cache is per process (local
  memory) or a dummy.
* ``textclass.W011``: ``rest_framework.authtoken`` is not installed, so the drop-in
  endpoint cannot accept ``Authorization: Bearer`` tokens.
* ``textclass.W012``: the API's permission classes let anonymous clients in (DRF's own
  default, ``AllowAny``), so anyone can submit texts.
"""

import re

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.urls import get_resolver
from django.utils.module_loading import import_string

from django_textclass.conf import app_settings

INTEGERS = ("API_MAX_BATCH", "API_MAX_BODY_BYTES", "API_PAGE_SIZE", "API_MAX_PAGE_SIZE")
POSITIVE = ("API_WAIT_POLL_SECONDS", "API_IDEMPOTENCY_TTL")
NON_NEGATIVE = (
    "API_MAX_WAIT_SECONDS",
    "INFERENCE_WAIT_SECONDS",
    "INFERENCE_WAIT_FOR_MODEL_SECONDS",
)
_RATE = re.compile(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)")
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


#: The application namespace of ``django_textclass.api.urls``.
APP_NAME = "textclass_api"


def api_mounted():
    """Whether the project's URLconf includes ``django_textclass.api.urls`` anywhere.

    A URLconf that fails to load counts as not mounted: Django's own URL checks report it.
    """
    try:
        return APP_NAME in get_resolver().app_dict
    except Exception:  # any error of the project's URLconf
        return False


@checks.register(checks.Tags.compatibility)
def check_api_settings(app_configs=None, **kwargs):
    """Check the REST API's settings and what it needs, when its URLs are mounted."""
    if not api_mounted():
        return []
    messages = _check_installation()
    for name in INTEGERS + POSITIVE + NON_NEGATIVE:
        value = getattr(app_settings, name)
        if name in INTEGERS:
            valid, rule = isinstance(value, int) and value >= 1, "an integer >= 1"
        else:
            valid = isinstance(value, (int, float)) and (
                value > 0 if name in POSITIVE else value >= 0
            )
            rule = "a number > 0" if name in POSITIVE else "a number >= 0"
        if isinstance(value, bool) or not valid:
            messages.append(
                checks.Error(
                    f"TEXTCLASS[{name!r}] must be {rule}, not {value!r}.",
                    id="textclass.E010",
                )
            )
    rate = app_settings.API_THROTTLE_RATE
    if rate is not None and not (isinstance(rate, str) and _RATE.fullmatch(rate)):
        messages.append(
            checks.Error(
                f"TEXTCLASS['API_THROTTLE_RATE'] must be None or a rate like '60/minute', "
                f"not {rate!r}.",
                id="textclass.E011",
            )
        )
    if app_settings.API_THROTTLE_CACHE not in getattr(settings, "CACHES", {}):
        messages.append(
            checks.Error(
                f"TEXTCLASS['API_THROTTLE_CACHE'] is {app_settings.API_THROTTLE_CACHE!r}, which "
                "is not an alias in CACHES.",
                id="textclass.E012",
            )
        )
    permissions, errors = _import_classes("API_PERMISSION_CLASSES")
    messages.extend(errors)
    messages.extend(_import_classes("API_THROTTLE_CLASSES")[1])
    if permissions is not None and _lets_anyone_in(permissions):
        messages.append(
            checks.Warning(
                "The REST API of django_textclass lets anonymous clients in: anyone who reaches "
                "it can submit texts, each a call to the backend (its permission classes are "
                f"{', '.join(cls.__name__ for cls in permissions) or 'none'}).",
                hint="Set REST_FRAMEWORK['DEFAULT_PERMISSION_CLASSES'] (e.g. "
                "['rest_framework.permissions.IsAuthenticated']), or "
                "TEXTCLASS['API_PERMISSION_CLASSES'] for this API only; silence textclass.W012 "
                "if anonymous submissions are intended.",
                id="textclass.W012",
            )
        )
    if not apps.is_installed("rest_framework.authtoken"):
        messages.append(
            checks.Warning(
                "rest_framework.authtoken is not in INSTALLED_APPS: the drop-in endpoint "
                "/models/{model_id} cannot accept 'Authorization: Bearer <token>'.",
                hint="Add 'rest_framework.authtoken' to INSTALLED_APPS and migrate, or silence "
                "textclass.W011 if clients use session authentication only.",
                id="textclass.W011",
            )
        )
    return messages


def _check_installation():
    """``E014``/``E015``: what the API's pages and schema need from the project."""
    messages = []
    if not apps.is_installed("rest_framework"):
        messages.append(
            checks.Error(
                "'rest_framework' is not in INSTALLED_APPS, but the REST API of django_textclass "
                "is mounted: its browsable pages fail without DRF's templates.",
                hint="Add 'rest_framework' to INSTALLED_APPS.",
                id="textclass.E014",
            )
        )
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.settings import api_settings

    try:
        schema_class = api_settings.DEFAULT_SCHEMA_CLASS
    except ImportError as exc:
        schema_class = str(exc)
    if not (isinstance(schema_class, type) and issubclass(schema_class, AutoSchema)):
        name = getattr(schema_class, "__qualname__", repr(schema_class))
        messages.append(
            checks.Error(
                f"REST_FRAMEWORK['DEFAULT_SCHEMA_CLASS'] is {name}, not drf-spectacular's "
                "AutoSchema: the API's /schema/ endpoint fails (500) with it.",
                hint="Set REST_FRAMEWORK['DEFAULT_SCHEMA_CLASS'] = "
                "'drf_spectacular.openapi.AutoSchema'.",
                id="textclass.E015",
            )
        )
    return messages


def _import_classes(name):
    """``(classes, errors)`` of ``TEXTCLASS[name]``, or of DRF's default when it is None.

    ``classes`` is None when an entry cannot be imported (each gets an ``E013``).
    """
    from rest_framework.settings import api_settings

    paths = getattr(app_settings, name)
    if paths is None:
        default = name.replace("API_", "DEFAULT_")
        try:
            return list(getattr(api_settings, default)), []
        except ImportError:  # DRF's own settings: reported by DRF when a view is used
            return None, []
    classes, errors = [], []
    for path in paths:
        try:
            classes.append(import_string(path))
        except ImportError as exc:
            errors.append(
                checks.Error(
                    f"TEXTCLASS[{name!r}]: cannot import {path!r} ({exc}).",
                    id="textclass.E013",
                )
            )
    return (None if errors else classes), errors


def _lets_anyone_in(permission_classes):
    """Whether the classes are none at all, or DRF's ``AllowAny`` only."""
    from rest_framework.permissions import AllowAny

    return all(isinstance(cls, type) and issubclass(cls, AllowAny) for cls in permission_classes)


@checks.register(checks.Tags.compatibility, deploy=True)
def check_api_deploy(app_configs=None, **kwargs):
    """``textclass.W010`` (``check --deploy``): the throttle counters must be shared."""
    if not api_mounted() or app_settings.API_THROTTLE_RATE is None:
        return []
    alias = app_settings.API_THROTTLE_CACHE
    backend = getattr(settings, "CACHES", {}).get(alias, {}).get("BACKEND", "")
    if backend in PER_PROCESS_CACHES:
        return [
            checks.Warning(
                f"The API throttle cache {alias!r} uses {backend.rsplit('.', 1)[-1]}: each process "
                "counts on its own (or not at all), so the per-user rate is not enforced across "
                "processes.",
                hint="Point TEXTCLASS['API_THROTTLE_CACHE'] at a shared cache (Redis, Memcached, "
                "database or file cache).",
                id="textclass.W010",
            )
        ]
    return []
