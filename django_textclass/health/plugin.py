"""Checks for django-health-check 4 (``pip install django-textclass[health]``).

Four small checks, one per part of the health report; add the ones you want to the view::

    from health_check.views import HealthCheckView
    from django_textclass.health.plugin import CHECKS

    path("ht/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database", *CHECKS,
    ]))

Each raises ``ServiceWarning`` at the warning level and ``ServiceUnavailable`` at the critical
one, as django-health-check's own checks do; that view answers 500 for either, so leave out a
check whose warnings must not page anyone. Messages name counts, ages, aliases and error codes,
never a text, a token or an error message.
"""

import dataclasses

from asgiref.sync import sync_to_async
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from django_textclass.health import parts

#: Every check of this module, as dotted paths for ``HealthCheckView.as_view(checks=...)``.
CHECKS = (
    "django_textclass.health.plugin.Backlog",
    "django_textclass.health.plugin.Sweep",
    "django_textclass.health.plugin.Backends",
    "django_textclass.health.plugin.FailureRate",
)


def _raise(status, problems):
    if status == parts.OK:
        return
    message = "; ".join(problems) or status
    if status == parts.CRITICAL:
        raise ServiceUnavailable(message)
    raise ServiceWarning(message)


async def _read(part):
    # The request's own thread and database connection (thread_sensitive), as Django's ORM
    # wants from async code.
    return await sync_to_async(part, thread_sensitive=True)()


@dataclasses.dataclass
class Backlog(HealthCheck):
    """The oldest pending request's age, and the backlog's size where a threshold is set."""

    async def run(self):
        """Warn or fail past ``PENDING_AGE_*`` / ``BACKLOG_*``."""
        part = await _read(parts.backlog)
        _raise(part["status"], part["problems"])


@dataclasses.dataclass
class Sweep(HealthCheck):
    """How long ago the sweep ran: without it lost wake-ups and dead workers' rows wait."""

    async def run(self):
        """Warn or fail past ``SWEEP_AGE_*``; warn when it never ran."""
        part = await _read(parts.sweep)
        _raise(part["status"], part["problems"])


@dataclasses.dataclass
class Backends(HealthCheck):
    """Each backend's circuit breaker: open is a warning, open again and again critical."""

    async def run(self):
        """Warn on an open circuit; fail past ``CIRCUIT_OPENINGS_CRITICAL`` openings."""
        paces, problems = await _read(parts.backends)
        _raise(parts.worst(pace["status"] for pace in paces), problems)


@dataclasses.dataclass
class FailureRate(HealthCheck):
    """The share of recent requests that failed (judged from ``FAILURE_RATE_MIN_REQUESTS``)."""

    async def run(self):
        """Warn or fail past ``FAILURE_RATE_*``."""
        part = await _read(parts.failure_rate)
        _raise(part["status"], part["problems"])
