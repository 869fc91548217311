"""Backends by alias, configured in ``TEXTCLASS["BACKENDS"]`` the way ``CACHES`` is.

    backend = get_backend("default")

Instances are cached per process (each holds a pooled HTTP session) and dropped
when ``TEXTCLASS`` changes.
"""

import threading

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from django_textclass.conf import app_settings
from django_textclass.exceptions import TextClassConfigurationError

_lock = threading.Lock()
_backends = {}


def backend_config(alias):
    """Return the ``{"BACKEND", "OPTIONS"}`` dict of ``alias``.

    Raises:
        TextClassConfigurationError: if the alias is not configured.
    """
    backends = app_settings.BACKENDS
    if alias not in backends:
        configured = ", ".join(sorted(backends)) or "none"
        raise TextClassConfigurationError(
            f"TEXTCLASS backend alias {alias!r} is not configured (configured: {configured})."
        )
    return backends[alias]


def load_backend_class(path):
    """Import a backend class from its dotted path.

    Raises:
        TextClassConfigurationError: if it cannot be imported.
    """
    try:
        return import_string(path)
    except ImportError as exc:
        raise TextClassConfigurationError(
            f"Cannot import TEXTCLASS backend {path!r}: {exc}"
        ) from exc


def get_backend(alias=None):
    """Return the backend instance configured under ``alias`` (default: DEFAULT_BACKEND)."""
    alias = alias or app_settings.DEFAULT_BACKEND
    with _lock:
        backend = _backends.get(alias)
        if backend is None:
            config = backend_config(alias)
            backend_class = load_backend_class(config["BACKEND"])
            options = config.get("OPTIONS") or {}
            if not isinstance(options, dict):
                raise TextClassConfigurationError(
                    f"TEXTCLASS backend {alias!r}: OPTIONS must be a dict."
                )
            try:
                backend = backend_class(alias=alias, **options)
            except TypeError as exc:
                raise TextClassConfigurationError(
                    f"TEXTCLASS backend {alias!r} rejects its OPTIONS: {exc}"
                ) from exc
            _backends[alias] = backend
        return backend


def reset_backends():
    """Close and forget every cached backend (called when TEXTCLASS changes)."""
    with _lock:
        for backend in _backends.values():
            backend.close()
        _backends.clear()


def _reset_on_change(*, setting, **kwargs):
    # Instances are rebuilt lazily from app_settings at their next use, so this works
    # whichever TEXTCLASS receiver runs first.
    if setting == "TEXTCLASS":
        reset_backends()


setting_changed.connect(_reset_on_change)
