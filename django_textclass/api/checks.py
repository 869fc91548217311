"""System checks of the REST API settings (ids ``textclass.E010``-``E019``, ``W010``-``W019``).

* ``textclass.E010``: an ``API_*`` / ``INFERENCE_*`` number is out of range.
* ``textclass.E011``: ``API_THROTTLE_RATE`` is not a rate such as ``"60/minute"``.
* ``textclass.E012``: ``API_THROTTLE_CACHE`` is not an alias in ``CACHES``.
* ``textclass.E013``: an ``API_PERMISSION_CLASSES`` entry cannot be imported.
* ``textclass.W010``: the throttle cache is per process (local memory) or a dummy.
* ``textclass.W011``: ``rest_framework.authtoken`` is not installed, so the drop-in
  endpoint cannot accept ``Authorization: Bearer`` tokens.
"""

import re

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from django_textclass.conf import app_settings

INTEGERS = ("API_MAX_BATCH", "API_MAX_BODY_BYTES", "API_PAGE_SIZE", "API_MAX_PAGE_SIZE")
POSITIVE = ("API_WAIT_POLL_SECONDS", "API_IDEMPOTENCY_TTL")
NON_NEGATIVE = ("API_MAX_WAIT_SECONDS", "INFERENCE_WAIT_SECONDS",
                "INFERENCE_WAIT_FOR_MODEL_SECONDS")
_RATE = re.compile(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)")
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register()
def check_api_settings(app_configs=None, **kwargs):
    """Check the REST API keys of ``TEXTCLASS``."""
    messages = []
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
            messages.append(checks.Error(
                f"TEXTCLASS[{name!r}] must be {rule}, not {value!r}.", id="textclass.E010",
            ))
    rate = app_settings.API_THROTTLE_RATE
    if rate is not None and not (isinstance(rate, str) and _RATE.fullmatch(rate)):
        messages.append(checks.Error(
            f"TEXTCLASS['API_THROTTLE_RATE'] must be None or a rate like '60/minute', "
            f"not {rate!r}.", id="textclass.E011",
        ))
    messages.extend(_check_throttle_cache(rate))
    for path in app_settings.API_PERMISSION_CLASSES:
        try:
            import_string(path)
        except ImportError as exc:
            messages.append(checks.Error(
                f"TEXTCLASS['API_PERMISSION_CLASSES']: cannot import {path!r} ({exc}).",
                id="textclass.E013",
            ))
    if not apps.is_installed("rest_framework.authtoken"):
        messages.append(checks.Warning(
            "rest_framework.authtoken is not in INSTALLED_APPS: the drop-in endpoint "
            "/models/{model_id} cannot accept 'Authorization: Bearer <token>'.",
            hint="Add 'rest_framework.authtoken' to INSTALLED_APPS and migrate, or silence "
            "textclass.W011 if clients use session authentication only.",
            id="textclass.W011",
        ))
    return messages


def _check_throttle_cache(rate):
    alias = app_settings.API_THROTTLE_CACHE
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        return [checks.Error(
            f"TEXTCLASS['API_THROTTLE_CACHE'] is {alias!r}, which is not an alias in CACHES.",
            id="textclass.E012",
        )]
    backend = caches[alias].get("BACKEND", "")
    if rate is not None and backend in PER_PROCESS_CACHES:
        return [checks.Warning(
            f"The API throttle cache {alias!r} uses {backend.rsplit('.', 1)[-1]}: each process "
            "counts on its own (or not at all), so the per-user rate is not enforced across "
            "processes.",
            hint="Point TEXTCLASS['API_THROTTLE_CACHE'] at a shared cache (Redis, Memcached, "
            "database or file cache).",
            id="textclass.W010",
        )]
    return []
