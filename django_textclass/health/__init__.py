"""Health of the pipeline, for people and for monitors (docs/operations.md).

- :func:`report`: backlog, sweep, backends, failure rate, each with a level;
- ``django_textclass.health.urls``: a JSON view of it, for staff or a bearer token;
- ``django_textclass.health.plugin``: checks for django-health-check (the ``health`` extra).

A feature over the core: it reads the models and the pacing service, and nothing of the core
imports it.
"""

from django_textclass.health.parts import (
    CRITICAL,
    DEFAULT_THRESHOLDS,
    LEVELS,
    OK,
    WARNING,
    backends,
    backlog,
    failure_rate,
    report,
    sweep,
    thresholds,
)

__all__ = [
    "CRITICAL",
    "DEFAULT_THRESHOLDS",
    "LEVELS",
    "OK",
    "WARNING",
    "backends",
    "backlog",
    "failure_rate",
    "report",
    "sweep",
    "thresholds",
]
