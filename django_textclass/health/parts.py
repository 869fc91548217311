"""The health report: four parts, each with a level, read from the database in a few queries.

=============  =========================================================================
part           what it reads
=============  =========================================================================
backlog        pending and running requests, how many pending ones are due, the oldest
               pending one's submission time (the status index; as small as the backlog)
sweep          when the sweep last ran (the one ``SweepRun`` row)
backends       each configured alias and each ``BackendPace`` row: circuit, waits
failure_rate   requests created in the last window: failed / (succeeded + failed), and
               the failures by error code (the ``created_at`` index)
=============  =========================================================================

Each part has a ``status``: ``ok``, ``warning`` or ``critical``, from the thresholds of
``TEXTCLASS["HEALTH_THRESHOLDS"]`` (:func:`thresholds`; docs/operations.md says why each
default is what it is). The report's own status is the worst of its parts'.
"""

from datetime import timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from django_textclass.conf import app_settings
from django_textclass.exceptions import TextClassConfigurationError
from django_textclass.models import BackendPace, ClassificationRequest, Status, SweepRun
from django_textclass.services import pacing
from django_textclass.services.recovery import SWEEP

OK, WARNING, CRITICAL = "ok", "warning", "critical"
#: The levels, best first.
LEVELS = (OK, WARNING, CRITICAL)

#: The defaults of ``TEXTCLASS["HEALTH_THRESHOLDS"]``; a site's dict is merged over them.
DEFAULT_THRESHOLDS = {
    # Seconds since the oldest pending request was submitted.
    "PENDING_AGE_WARNING": 300,
    "PENDING_AGE_CRITICAL": 1800,
    # Pending requests (None: not checked; a backlog's normal size is the site's own).
    "BACKLOG_WARNING": None,
    "BACKLOG_CRITICAL": None,
    # Seconds since the sweep last ran.
    "SWEEP_AGE_WARNING": 300,
    "SWEEP_AGE_CRITICAL": 900,
    # failed / (succeeded + failed) of the requests created in the last window.
    "FAILURE_RATE_WARNING": 0.05,
    "FAILURE_RATE_CRITICAL": 0.25,
    "FAILURE_RATE_WINDOW": 900,
    # Fewer finished requests than this in the window: the rate is shown, never judged.
    "FAILURE_RATE_MIN_REQUESTS": 20,
    # An open circuit is a warning; opened this many times in a row, critical.
    "CIRCUIT_OPENINGS_CRITICAL": 3,
}


def thresholds():
    """``TEXTCLASS["HEALTH_THRESHOLDS"]`` merged over :data:`DEFAULT_THRESHOLDS`.

    Raises:
        TextClassConfigurationError: an unknown key, or a value that is not a number
            (None is allowed where the default is None).
    """
    given = app_settings.HEALTH_THRESHOLDS or {}
    if not isinstance(given, dict):
        raise TextClassConfigurationError("TEXTCLASS['HEALTH_THRESHOLDS'] must be a dict")
    unknown = sorted(set(given) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise TextClassConfigurationError(
            f"TEXTCLASS['HEALTH_THRESHOLDS'] has unknown keys: {', '.join(map(str, unknown))}"
        )
    merged = {**DEFAULT_THRESHOLDS, **given}
    for key, value in merged.items():
        optional = key.startswith("BACKLOG_")
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise TextClassConfigurationError(
                f"TEXTCLASS['HEALTH_THRESHOLDS']['{key}'] must be a number of 0 or more"
                + (" or None" if optional else "")
                + f", not {value!r}"
            )
    return merged


def worst(levels):
    """The worst of ``levels`` (``ok`` when there is none)."""
    return max(levels, key=LEVELS.index, default=OK)


def level(value, warning, critical):
    """``critical`` when ``value`` is above ``critical``, else ``warning`` above ``warning``."""
    if value is None:
        return OK
    if critical is not None and value > critical:
        return CRITICAL
    if warning is not None and value > warning:
        return WARNING
    return OK


def _seconds(delta):
    return None if delta is None else round(max(0.0, delta.total_seconds()), 3)


def backlog(now=None, limits=None):
    """The pending and running requests (rows: chunks of split texts count one each)."""
    now = now or timezone.now()
    limits = limits or thresholds()
    pending = ClassificationRequest.objects.order_by().filter(status=Status.PENDING)
    counted = (
        ClassificationRequest.objects.order_by()
        .filter(status__in=[Status.PENDING, Status.RUNNING])
        .aggregate(
            pending=Count("pk", filter=Q(status=Status.PENDING)),
            running=Count("pk", filter=Q(status=Status.RUNNING)),
            due=Count("pk", filter=Q(status=Status.PENDING, next_attempt_at__lte=now)),
        )
    )
    oldest = pending.aggregate(oldest=Min("created_at"))["oldest"]
    age = _seconds(None if oldest is None else now - oldest)
    levels = {
        "age": level(age, limits["PENDING_AGE_WARNING"], limits["PENDING_AGE_CRITICAL"]),
        "size": level(counted["pending"], limits["BACKLOG_WARNING"], limits["BACKLOG_CRITICAL"]),
    }
    problems = []
    if levels["age"] != OK:
        bound = limits[f"PENDING_AGE_{levels['age'].upper()}"]
        problems.append(
            f"the oldest pending request was submitted {age:,.0f} s ago "
            f"({levels['age']} past {bound:,} s)"
        )
    if levels["size"] != OK:
        bound = limits[f"BACKLOG_{levels['size'].upper()}"]
        problems.append(
            f"{counted['pending']:,} requests are pending ({levels['size']} past {bound:,})"
        )
    return {
        "status": worst(levels.values()),
        "pending": counted["pending"],
        "running": counted["running"],
        "due": counted["due"],
        "oldest_pending_created_at": oldest,
        "oldest_pending_age_seconds": age,
        "problems": problems,
    }


def sweep(now=None, limits=None):
    """When the sweep last ran (beat's or a worker's own)."""
    now = now or timezone.now()
    limits = limits or thresholds()
    last = SweepRun.objects.filter(name=SWEEP).values_list("last_run_at", flat=True).first()
    age = _seconds(None if last is None else now - last)
    if age is None:
        status = WARNING
        problems = ["the sweep never ran: is the django_textclass.sweep beat entry scheduled?"]
    else:
        status = level(age, limits["SWEEP_AGE_WARNING"], limits["SWEEP_AGE_CRITICAL"])
        problems = (
            []
            if status == OK
            else [
                f"the sweep last ran {age:,.0f} s ago "
                f"({status} past {limits[f'SWEEP_AGE_{status.upper()}']:,} s)"
            ]
        )
    return {"status": status, "last_run_at": last, "age_seconds": age, "problems": problems}


def backends(now=None, limits=None):
    """Each backend alias (and each model told to wait): its circuit and its wait."""
    now = now or timezone.now()
    limits = limits or thresholds()
    rows = {(row.backend, row.model_id): row for row in pacing.states()}
    for alias in app_settings.BACKENDS:
        rows.setdefault((alias, ""), BackendPace(backend=alias))
    paces, problems = [], []
    for (alias, model_id), row in sorted(rows.items()):
        status = OK
        if row.circuit != BackendPace.Circuit.CLOSED:
            status = CRITICAL if row.opened >= limits["CIRCUIT_OPENINGS_CRITICAL"] else WARNING
            problems.append(
                f"backend {alias}: circuit {row.circuit} after {row.failures} "
                f"failed calls in a row, opened {row.opened} times in a row "
                f"(last error {row.last_error or 'unknown'})"
            )
        waiting = row.not_before is not None and row.not_before > now
        paces.append(
            {
                "backend": alias,
                "model": model_id or None,
                "circuit": row.circuit,
                "not_before": row.not_before,
                "waiting_seconds": _seconds(row.not_before - now) if waiting else 0,
                "reason": row.reason,
                "failures": row.failures,
                "openings": row.opened,
                "last_error": row.last_error,
                "status": status,
            }
        )
    return paces, problems


def failure_rate(now=None, limits=None):
    """Failed / (succeeded + failed) of the requests created in the last window."""
    now = now or timezone.now()
    limits = limits or thresholds()
    window = limits["FAILURE_RATE_WINDOW"]
    recent = ClassificationRequest.objects.order_by().filter(
        created_at__gte=now - timedelta(seconds=window), parent__isnull=True
    )
    counts = recent.aggregate(
        succeeded=Count("pk", filter=Q(status=Status.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
    )
    done = counts["succeeded"] + counts["failed"]
    rate = counts["failed"] / done if done else None
    status = OK
    if done >= limits["FAILURE_RATE_MIN_REQUESTS"]:
        status = level(rate, limits["FAILURE_RATE_WARNING"], limits["FAILURE_RATE_CRITICAL"])
    by_code = {}
    if counts["failed"]:
        rows = (
            recent.filter(status=Status.FAILED)
            .values("error_code")
            .annotate(n=Count("*"))
            .values_list("error_code", "n")
        )
        by_code = dict(sorted(rows, key=lambda row: (-row[1], row[0])))
    problems = (
        []
        if status == OK
        else [
            f"{counts['failed']:,} of {done:,} requests created in the last {window:,} s failed "
            f"({rate * 100:.1f} %, {status} past "
            f"{limits[f'FAILURE_RATE_{status.upper()}'] * 100:g} %)"
        ]
    )
    return {
        "status": status,
        "window_seconds": window,
        "succeeded": counts["succeeded"],
        "failed": counts["failed"],
        "rate": None if rate is None else round(rate, 4),
        "by_error_code": by_code,
        "problems": problems,
    }


def report(now=None):
    """The whole health report (a JSON-serialisable dict once datetimes are encoded).

    Returns:
        ``{"status", "checked_at", "problems", "backlog", "sweep", "backends",
        "failure_rate", "thresholds"}``; ``problems`` lists, in words, every part that is
        not ``ok``.

    Raises:
        TextClassConfigurationError: ``HEALTH_THRESHOLDS`` is malformed.
    """
    now = now or timezone.now()
    limits = thresholds()
    parts = {
        "backlog": backlog(now, limits),
        "sweep": sweep(now, limits),
        "failure_rate": failure_rate(now, limits),
    }
    paces, pace_problems = backends(now, limits)
    problems = [
        *parts["backlog"]["problems"],
        *parts["sweep"]["problems"],
        *pace_problems,
        *parts["failure_rate"]["problems"],
    ]
    for part in parts.values():
        del part["problems"]
    levels = [part["status"] for part in parts.values()] + [pace["status"] for pace in paces]
    return {
        "status": worst(levels),
        "checked_at": now,
        "problems": problems,
        "backlog": parts["backlog"],
        "sweep": parts["sweep"],
        "backends": paces,
        "failure_rate": parts["failure_rate"],
        "thresholds": limits,
    }
