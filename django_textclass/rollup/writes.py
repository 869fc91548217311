"""Writing the roll-up: marking changed days, rolling days up, verifying them."""

from collections import Counter
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import Count, F, Max, Min, Sum
from django.db.models.functions import Trunc, TruncDate
from django.utils import timezone

from django_textclass.rollup.bins import elapsed_ms, log_bin, score_bin
from django_textclass.rollup.days import UTC, day_start, enabled

#: How long after its end (UTC) a day may be rolled up. Writers mark a day changed
#: only once it is over, so a write that began before midnight must have committed by
#: then; it also absorbs clock differences between machines.
SETTLE = timedelta(hours=1)
#: Days :func:`verify` compares per pair of queries.
VERIFY_CHUNK_DAYS = 31


def app_models():
    """The app's models module, imported when first needed."""
    from django_textclass import models

    return models


# --- rolling days up ------------------------------------------------------------------------


def roll(*, now=None, max_days=None, using=None, on_day=None):
    """Roll up every closed day not rolled yet, and every day changed since it was rolled.

    Days are taken oldest first: those left half-done or marked changed, then each new
    day after the last one rolled (days without requests are recorded as empty).

    Args:
        now: the current time (default ``timezone.now()``).
        max_days: most days summed in this call (None: all); the next call goes on.
        using: the database alias (default: the router's choice for requests).
        on_day: called with each day once it is summed (a command's progress).

    Returns:
        The number of days summed (0 when the roll-up is not :func:`enabled`).
    """
    if not enabled():
        return 0
    models = app_models()
    using = using or router.db_for_write(models.ClassificationRequest)
    limit = ((now or timezone.now()) - SETTLE).astimezone(UTC).date()  # days before it are closed
    last = models.RollupDay.objects.using(using).aggregate(last=Max("day"))["last"]
    # Changed days past the last rolled one are new days: the walk below takes them.
    days = [day for day in _redo_days(using, limit) if last is not None and day <= last]
    if max_days is not None:
        days = days[:max_days]
    done = 0
    for day in days:
        roll_day(day, using=using)
        done += 1
        if on_day is not None:
            on_day(day)
    for day in _new_days(using, limit, last):
        if max_days is not None and done >= max_days:
            break
        roll_day(day, using=using)
        done += 1
        if on_day is not None:
            on_day(day)
    return done


def closed_span(*, now=None, using=None):
    """``(first, stop)``: the UTC days from the first request's to the first day not closed.

    What :func:`rebuild` walks (days without requests are skipped in bulk); ``(None, stop)``
    when there is no request.
    """
    models = app_models()
    using = using or router.db_for_write(models.ClassificationRequest)
    stop = ((now or timezone.now()) - SETTLE).astimezone(UTC).date()
    first = (
        models.ClassificationRequest.objects.using(using)
        .order_by()
        .aggregate(first=Min("created_at"))["first"]
    )
    return (None if first is None else first.astimezone(UTC).date()), stop


def _redo_days(using, limit):
    models = app_models()
    half_done = models.RollupDay.objects.using(using).filter(rolled_at__isnull=True, day__lt=limit)
    dirty = models.RollupDirtyDay.objects.using(using).filter(day__lt=limit)
    return sorted(
        set(half_done.values_list("day", flat=True)) | set(dirty.values_list("day", flat=True))
    )


def _new_days(using, limit, last):
    """Days after ``last`` (the last rolled day) and before ``limit`` with requests, oldest first.

    Days in between without requests are recorded as empty on the way, so the rolled
    days stay one run and a window's live part stays its edges. Each step is one
    ``MIN`` on the ``created_at`` index.
    """
    models = app_models()
    requests = models.ClassificationRequest.objects.using(using).order_by()
    if last is None:
        first = requests.aggregate(first=Min("created_at"))["first"]
        if first is None:
            return
        cursor = first.astimezone(UTC).date()
    else:
        cursor = last + timedelta(days=1)
    while cursor < limit:
        found = requests.filter(
            created_at__gte=day_start(cursor), created_at__lt=day_start(limit)
        ).aggregate(first=Min("created_at"))["first"]
        next_day = found.astimezone(UTC).date() if found else limit
        _record_empty(using, cursor, next_day)
        if found is None:
            return
        yield next_day
        cursor = next_day + timedelta(days=1)


def _record_empty(using, start, stop):
    models = app_models()
    rolled_at = timezone.now()
    empty = [
        models.RollupDay(day=start + timedelta(days=i), rolled_at=rolled_at)
        for i in range((stop - start).days)
    ]
    models.RollupDay.objects.using(using).bulk_create(empty, batch_size=500, ignore_conflicts=True)


def roll_day(day, *, using=None):
    """Sum the requests created on UTC ``day`` into the roll-up tables, replacing its rows.

    One transaction; two runs on the same day wait for each other (a row lock on its
    :class:`~django_textclass.models.RollupDay`). The day's change marker is deleted
    before the requests are read: a write committed after that read left its own.

    Returns:
        The number of requests counted.
    """
    models = app_models()
    using = using or router.db_for_write(models.ClassificationRequest)
    vendor = connections[using].vendor
    models.RollupDay.objects.using(using).get_or_create(day=day)
    start = day_start(day)
    with transaction.atomic(using=using):
        models.RollupDay.objects.using(using).select_for_update().get(day=day)
        models.RollupDirtyDay.objects.using(using).filter(day=day).delete()
        models.RollupCount.objects.using(using).filter(day=day).delete()
        models.RollupHistogram.objects.using(using).filter(day=day).delete()
        rows = (
            models.ClassificationRequest.objects.using(using)
            .order_by()
            .filter(created_at__gte=start, created_at__lt=start + timedelta(days=1))
        )
        counts = [
            models.RollupCount(day=day, **group)
            for group in rows.annotate(
                hour=Trunc("created_at", "hour", tzinfo=UTC),
                finished_hour=Trunc("finished_at", "hour", tzinfo=UTC),
            )
            .values("hour", "finished_hour", "model_id", "status", "top_label")
            .annotate(requests=Count("*"))
        ]
        models.RollupCount.objects.using(using).bulk_create(counts, batch_size=1000)
        bins = [
            models.RollupHistogram(day=day, metric=metric, **group)
            for metric, group in _histogram_groups(rows, vendor)
        ]
        models.RollupHistogram.objects.using(using).bulk_create(bins, batch_size=1000)
        total = sum(row.requests for row in counts)
        models.RollupDay.objects.using(using).filter(day=day).update(
            rolled_at=timezone.now(), requests=total
        )
    return total


def _histogram_groups(rows, vendor):
    from django_textclass.models import RollupHistogram, Status

    succeeded = rows.filter(status=Status.SUCCEEDED)
    sources = [
        (
            RollupHistogram.Metric.SCORE,
            succeeded.exclude(top_label="").filter(top_score__isnull=False),
            score_bin(),
        ),
        (
            RollupHistogram.Metric.LATENCY,
            succeeded.filter(finished_at__isnull=False),
            log_bin(elapsed_ms(vendor)),
        ),
        (
            RollupHistogram.Metric.BACKEND,
            succeeded.filter(backend_ms__isnull=False),
            log_bin(F("backend_ms")),
        ),
    ]
    for metric, queryset, bin_of in sources:
        groups = (
            queryset.annotate(bin=bin_of)
            .values("model_id", "top_label", "bin")
            .annotate(requests=Count("*"))
        )
        for group in groups:
            yield metric, {**group, "bin": int(group["bin"])}


def rebuild(*, now=None, using=None, on_day=None):
    """Forget the whole roll-up and sum every closed day again. Returns the days summed.

    ``on_day`` is called with each day once it is summed (see :func:`roll`).
    """
    models = app_models()
    using = using or router.db_for_write(models.ClassificationRequest)
    with transaction.atomic(using=using):
        for model in (
            models.RollupCount,
            models.RollupHistogram,
            models.RollupDirtyDay,
            models.RollupDay,
        ):
            model.objects.using(using).all().delete()
    return roll(now=now, using=using, on_day=on_day)


def verify(*, using=None):
    """Compare every rolled day's counts with the requests table; mark the days that differ.

    Finds writes that bypassed the ORM (raw SQL, cascaded deletes). It reads every
    request of a rolled day, VERIFY_CHUNK_DAYS days per pair of grouped queries (so its
    memory stays bounded), so run it rarely (daily) on large tables.

    Returns:
        The sorted list of days marked changed.
    """
    if not enabled():
        return []
    models = app_models()
    using = using or router.db_for_write(models.ClassificationRequest)
    rolled = sorted(
        models.RollupDay.objects.using(using)
        .filter(rolled_at__isnull=False)
        .values_list("day", flat=True)
    )
    differ = set()
    for i in range(0, len(rolled), VERIFY_CHUNK_DAYS):
        days = rolled[i : i + VERIFY_CHUNK_DAYS]
        differ |= _differing_days(using, days[0], days[-1] + timedelta(days=1)) & set(days)
    with transaction.atomic(using=using):
        app_models().RollupDirtyDay.mark(differ, using=using)
    return sorted(differ)


def _differing_days(using, first, stop):
    """Days in ``[first, stop)`` whose counts per model, status and label differ from the rows."""
    models = app_models()
    keys = ("day", "model_id", "status", "top_label")
    stored = Counter(
        {
            tuple(row[key] for key in keys): row["n"]
            for row in models.RollupCount.objects.using(using)
            .filter(day__gte=first, day__lt=stop)
            .values(*keys)
            .annotate(n=Sum("requests"))
        }
    )
    live = Counter(
        {
            tuple(row[key] for key in keys): row["n"]
            for row in models.ClassificationRequest.objects.using(using)
            .order_by()
            .filter(
                created_at__gte=day_start(first),
                created_at__lt=day_start(stop),
            )
            .annotate(day=TruncDate("created_at", tzinfo=UTC))
            .values(*keys)
            .annotate(n=Count("*"))
        }
    )
    return {key[0] for key in stored.keys() | live.keys() if stored[key] != live[key]}
