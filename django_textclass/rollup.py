"""The daily roll-up: statistics over long windows cost what the window spans, not its rows.

Each closed UTC day of the history is summed once into two small tables:

- :class:`~django_textclass.models.RollupCount`: requests per creation hour, finish
  hour, model, status and top label (every count of the dashboard, exactly);
- :class:`~django_textclass.models.RollupHistogram`: succeeded requests per model, top
  label and bin of the top score (the dashboard's ten bins, exact) and of the two
  latencies (logarithmic bins, :data:`RELATIVE_ACCURACY` wide).

:func:`split` then answers a statistics query from the rolled days it covers plus the
rows of the rest of its window (today, the partial days at its edges, days changed since
they were rolled), which :mod:`django_textclass.stats` reads live as before.

**Keeping it right.** A day is rolled only once it ended :data:`SETTLE` ago. Any later
write to its requests through the ORM (``QuerySet.update``/``delete``/``bulk_create``,
``Model.save``/``delete``) inserts a :class:`~django_textclass.models.RollupDirtyDay`
marker *in the same transaction* (:func:`mark_changed`), and a marked day is read live
until the next :func:`roll` sums it again. :func:`roll_day` deletes the marker *before*
it reads the day, so a change it did not see leaves its marker behind. Writes that
bypass the ORM (raw SQL, cascades from deleting a user or a content type) are found by
:func:`verify`, which compares every rolled day's counts with the table.

**Percentiles.** A latency ``x`` ms falls in bin ``ceil(log_g(max(x, 1)))`` with
``g = (1 + a) / (1 - a)``; the bin is reported as ``2 g^i / (g + 1)``, within ``a``
(1 %) of every value in it (the scheme of DDSketch). Values under 1 ms share bin 0.
"""

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from datetime import timezone as dt_timezone
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Min,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Ceil, Greatest, Ln, Trunc, TruncDate
from django.db.models.lookups import Exact, GreaterThanOrEqual, LessThan
from django.db.models.sql.where import AND, WhereNode
from django.utils import timezone

UTC = dt_timezone.utc  # datetime.UTC needs Python 3.11

#: How long after its end (UTC) a day may be rolled up. Writers mark a day changed
#: only once it is over, so a write that began before midnight must have committed by
#: then; it also absorbs clock differences between machines.
SETTLE = timedelta(hours=1)
#: Relative error of the latency percentiles read from rolled-up days.
RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LN_GAMMA = math.log(GAMMA)
#: Number of equal-width bins of the top-score histogram over [0, 1].
SCORE_BINS = 10
#: Days :func:`verify` compares per pair of queries.
VERIFY_CHUNK_DAYS = 31
#: Fields a query may filter on by equality and still be answered from the roll-up.
SLICE_FIELDS = ("model_id", "status", "top_label")


def enabled():
    """Whether the roll-up is in use: it needs ``USE_TZ = True`` (check ``textclass.W004``).

    With ``USE_TZ = False`` datetimes are naive and a UTC day has no meaning here; nothing
    is marked or rolled, and every statistic is read from the rows.
    """
    return settings.USE_TZ


def _models():
    from django_textclass import models

    return models


# --- bins shared by the live queries and the roll-up ---------------------------------------


def score_bin():
    """The bin (0 to SCORE_BINS - 1) of ``top_score``: ``lower <= score < upper``; 1.0 in the last.

    The edges are SQL literals, so every database puts a score in the same bin.
    """
    edges = score_edges()
    return Case(
        *[When(top_score__lt=edges[i + 1], then=Value(i)) for i in range(SCORE_BINS - 1)],
        default=Value(SCORE_BINS - 1),
        output_field=IntegerField(),
    )


def score_edges():
    """The SCORE_BINS + 1 edges of the score bins, from 0.0 to 1.0."""
    return [round(i / SCORE_BINS, 10) for i in range(SCORE_BINS + 1)]


class EpochMilliseconds(Func):
    """An interval as milliseconds (double precision) on PostgreSQL.

    The same value as ``(EXTRACT(EPOCH FROM x) * 1000.0)::double precision``, bit for
    bit, without its ``numeric`` arithmetic (a third of a percentile query's time on a
    million rows): ``date_part`` gives the seconds as a double, close enough for
    ``ROUND(... * 1e6)`` to recover the exact whole microseconds (for any interval
    shorter than about 30 years), and one division by 1000 then rounds correctly.
    """

    template = "(ROUND(date_part('epoch', %(expressions)s) * 1000000.0) / 1000.0)"
    output_field = FloatField()


class _MicrosecondsToMilliseconds(Func):
    # Django computes a difference of datetimes as whole microseconds on SQLite and MySQL.
    template = "(%(expressions)s / 1000.0)"
    output_field = FloatField()


def elapsed():
    """``finished_at - created_at`` as a duration expression."""
    return ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())


def elapsed_ms(vendor):
    """``finished_at - created_at`` in milliseconds, as a float expression for ``vendor``."""
    if vendor == "postgresql":
        return EpochMilliseconds(elapsed())
    return _MicrosecondsToMilliseconds(elapsed())


def log_bin(expression):
    """The logarithmic bin of a number of milliseconds (see the module's docstring)."""
    # Cast: on PostgreSQL an integer column next to the literal 1.0 would be compared,
    # and its logarithm taken, in slow ``numeric`` arithmetic.
    return Ceil(
        Ln(Greatest(Cast(expression, FloatField()), Value(1.0), output_field=FloatField()))
        / Value(LN_GAMMA, output_field=FloatField())
    )


def bin_value(index):
    """The value a logarithmic bin stands for: within RELATIVE_ACCURACY of all it holds."""
    return 2 * GAMMA ** index / (GAMMA + 1)


def histogram_percentiles(counts, fractions):
    """``{key: value}`` for ``fractions`` (``{key: fraction}``) of a log-bin histogram.

    Like ``percentile_cont``: the value at rank ``fraction * (n - 1)``, interpolated
    between the two closest ranks, each rank read as its bin's value. None when
    ``counts`` is empty.
    """
    total = sum(counts.values())
    if not total:
        return dict.fromkeys(fractions)
    bins = sorted(counts.items())

    def at_rank(rank):
        seen = 0
        for index, n in bins:
            seen += n
            if rank < seen:
                return bin_value(index)
        return bin_value(bins[-1][0])

    result = {}
    for key, fraction in fractions.items():
        position = fraction * (total - 1)
        low = math.floor(position)
        lower, upper = at_rank(low), at_rank(min(low + 1, total - 1))
        result[key] = lower + (upper - lower) * (position - low)
    return result


# --- marking changed days -------------------------------------------------------------------


def day_start(day):
    """Midnight UTC that starts ``day``."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def _today(now=None):
    return (now or timezone.now()).astimezone(UTC).date()


def changed_days(queryset, now=None):
    """UTC days before today of the rows in ``queryset``: what a write to them must mark."""
    if not enabled():
        return set()
    return set(
        queryset.order_by().filter(created_at__lt=day_start(_today(now)))
        .annotate(_day=TruncDate("created_at", tzinfo=UTC))
        .values_list("_day", flat=True).distinct()
    )


def days_of(moments, now=None):
    """UTC days before today among ``moments`` (what is not a datetime is skipped)."""
    if not enabled():
        return set()
    today = _today(now)
    days = {moment.astimezone(UTC).date() for moment in moments if isinstance(moment, datetime)}
    return {day for day in days if day < today}


def mark_changed(days, *, using):
    """Mark ``days`` changed (read live until rolled again), in the caller's transaction."""
    if days:
        _models().RollupDirtyDay.objects.using(using).bulk_create(
            [_models().RollupDirtyDay(day=day) for day in days], ignore_conflicts=True
        )


# --- rolling days up ------------------------------------------------------------------------


def roll(*, now=None, max_days=None, using=None):
    """Roll up every closed day not rolled yet, and every day changed since it was rolled.

    Days are taken oldest first: those left half-done or marked changed, then each new
    day after the last one rolled (days without requests are recorded as empty).

    Args:
        now: the current time (default ``timezone.now()``).
        max_days: most days summed in this call (None: all); the next call goes on.
        using: the database alias (default: the router's choice for requests).

    Returns:
        The number of days summed (0 when the roll-up is not :func:`enabled`).
    """
    if not enabled():
        return 0
    models = _models()
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
    for day in _new_days(using, limit, last):
        if max_days is not None and done >= max_days:
            break
        roll_day(day, using=using)
        done += 1
    return done


def _redo_days(using, limit):
    models = _models()
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
    models = _models()
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
    models = _models()
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
    models = _models()
    using = using or router.db_for_write(models.ClassificationRequest)
    vendor = connections[using].vendor
    models.RollupDay.objects.using(using).get_or_create(day=day)
    start = day_start(day)
    with transaction.atomic(using=using):
        models.RollupDay.objects.using(using).select_for_update().get(day=day)
        models.RollupDirtyDay.objects.using(using).filter(day=day).delete()
        models.RollupCount.objects.using(using).filter(day=day).delete()
        models.RollupHistogram.objects.using(using).filter(day=day).delete()
        rows = models.ClassificationRequest.objects.using(using).order_by().filter(
            created_at__gte=start, created_at__lt=start + timedelta(days=1)
        )
        counts = [
            models.RollupCount(day=day, **group)
            for group in rows.annotate(
                hour=Trunc("created_at", "hour", tzinfo=UTC),
                finished_hour=Trunc("finished_at", "hour", tzinfo=UTC),
            ).values("hour", "finished_hour", "model_id", "status", "top_label")
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
        (RollupHistogram.Metric.SCORE,
         succeeded.exclude(top_label="").filter(top_score__isnull=False), score_bin()),
        (RollupHistogram.Metric.LATENCY,
         succeeded.filter(finished_at__isnull=False), log_bin(elapsed_ms(vendor))),
        (RollupHistogram.Metric.BACKEND,
         succeeded.filter(backend_ms__isnull=False), log_bin(F("backend_ms"))),
    ]
    for metric, queryset, bin_of in sources:
        groups = queryset.annotate(bin=bin_of).values("model_id", "top_label", "bin").annotate(
            requests=Count("*")
        )
        for group in groups:
            yield metric, {**group, "bin": int(group["bin"])}


def rebuild(*, now=None, using=None):
    """Forget the whole roll-up and sum every closed day again. Returns the days summed."""
    models = _models()
    using = using or router.db_for_write(models.ClassificationRequest)
    with transaction.atomic(using=using):
        for model in (models.RollupCount, models.RollupHistogram, models.RollupDirtyDay,
                      models.RollupDay):
            model.objects.using(using).all().delete()
    return roll(now=now, using=using)


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
    models = _models()
    using = using or router.db_for_write(models.ClassificationRequest)
    rolled = sorted(models.RollupDay.objects.using(using).filter(rolled_at__isnull=False)
                    .values_list("day", flat=True))
    differ = set()
    for i in range(0, len(rolled), VERIFY_CHUNK_DAYS):
        days = rolled[i : i + VERIFY_CHUNK_DAYS]
        differ |= _differing_days(using, days[0], days[-1] + timedelta(days=1)) & set(days)
    with transaction.atomic(using=using):
        mark_changed(differ, using=using)
    return sorted(differ)


def _differing_days(using, first, stop):
    """Days in ``[first, stop)`` whose counts per model, status and label differ from the rows."""
    models = _models()
    keys = ("day", "model_id", "status", "top_label")
    stored = Counter({
        tuple(row[key] for key in keys): row["n"]
        for row in models.RollupCount.objects.using(using).filter(day__gte=first, day__lt=stop)
        .values(*keys).annotate(n=Sum("requests"))
    })
    live = Counter({
        tuple(row[key] for key in keys): row["n"]
        for row in models.ClassificationRequest.objects.using(using).order_by().filter(
            created_at__gte=day_start(first), created_at__lt=day_start(stop),
        ).annotate(day=TruncDate("created_at", tzinfo=UTC)).values(*keys).annotate(n=Count("*"))
    })
    return {key[0] for key in stored.keys() | live.keys() if stored[key] != live[key]}


# --- reading: which part of a query the roll-up answers --------------------------------------


@dataclass(frozen=True)
class Split:
    """A statistics query cut in two: rolled days, and the rows read live.

    Attributes:
        conditions: ``{field: value}`` equality filters of the query (SLICE_FIELDS).
        ranges: ``[(first_day, stop_day), ...]`` runs of rolled, unchanged UTC days.
        live: the query's rows outside those days (a queryset; possibly empty).
    """

    conditions: dict
    ranges: list
    live: object

    def day_filter(self):
        """A ``Q`` on ``day`` selecting the rolled days."""
        return reduce(or_, (Q(day__gte=a, day__lt=b) for a, b in self.ranges))


def split(queryset):
    """Cut ``queryset`` into rolled days and live rows, or None if the roll-up cannot help.

    It helps when the query filters only by equality on :data:`SLICE_FIELDS` and by a
    ``created_at`` range (``>=`` and ``<``), as the admin's filters and the API do, and
    when its window holds at least one rolled, unchanged day. Anything else (an owner,
    a text search) is read live in full.
    """
    described = _describe(queryset) if enabled() else None
    if described is None:
        return None
    conditions, start, end = described
    ranges = _rolled_ranges(queryset.db, start, end)
    if not ranges:
        return None
    gaps, cursor = [], start
    for first, stop in ranges:
        gaps.append((cursor, day_start(first)))
        cursor = day_start(stop)
    gaps.append((cursor, end))
    live_ranges = [
        Q(**{key: value for key, value in (("created_at__gte", low), ("created_at__lt", high))
             if value is not None})
        for low, high in gaps
        if low is None or high is None or low < high
    ]
    # Built afresh rather than by filtering ``queryset``: the query is nothing but these
    # conditions and its window (_describe checked), and without the window's own range
    # PostgreSQL reads just the edges (a BitmapOr) instead of the whole window.
    live = _models().ClassificationRequest.objects.using(queryset.db).order_by()
    live = live.filter(reduce(or_, live_ranges), **conditions) if live_ranges else live.none()
    return Split(conditions=conditions, ranges=ranges, live=live)


def _rolled_ranges(alias, start, end):
    models = _models()
    days = models.RollupDay.objects.using(alias).filter(rolled_at__isnull=False).exclude(
        day__in=models.RollupDirtyDay.objects.using(alias).values("day")
    )
    if start is not None:
        first_day = start.astimezone(UTC).date()
        if day_start(first_day) < start:
            first_day += timedelta(days=1)
        days = days.filter(day__gte=first_day)
    if end is not None:
        days = days.filter(day__lt=end.astimezone(UTC).date())
    ranges = []
    for day in days.order_by("day").values_list("day", flat=True):
        if ranges and ranges[-1][1] == day:
            ranges[-1][1] = day + timedelta(days=1)
        else:
            ranges.append([day, day + timedelta(days=1)])
    return [tuple(pair) for pair in ranges]


def _describe(queryset):
    """``(conditions, start, end)`` of a query the roll-up can answer, else None."""
    from django_textclass.models import ClassificationRequest

    query = queryset.query
    if (query.model is not ClassificationRequest or query.is_sliced or query.distinct
            or query.combinator or query.annotations or len(query.alias_map) > 1):
        return None
    conditions, bounds = {}, {"start": None, "end": None}
    alias = next(iter(query.alias_map), None)
    if not _read_where(query.where, alias, conditions, bounds):
        return None
    return conditions, bounds["start"], bounds["end"]


def _read_where(node, alias, conditions, bounds):
    if isinstance(node, WhereNode):
        if node.negated or (node.connector != AND and len(node.children) > 1):
            return False
        return all(_read_where(child, alias, conditions, bounds) for child in node.children)
    lhs, rhs = getattr(node, "lhs", None), getattr(node, "rhs", None)
    if getattr(lhs, "alias", None) != alias or not hasattr(lhs, "target"):
        return False
    name = lhs.target.name
    if type(node) is Exact and name in SLICE_FIELDS and isinstance(rhs, str):
        return conditions.setdefault(name, rhs) == rhs
    if name == "created_at" and isinstance(rhs, datetime) and timezone.is_aware(rhs):
        if type(node) is GreaterThanOrEqual:
            bounds["start"] = rhs if bounds["start"] is None else max(bounds["start"], rhs)
            return True
        if type(node) is LessThan:
            bounds["end"] = rhs if bounds["end"] is None else min(bounds["end"], rhs)
            return True
    return False


# --- reading: the rolled-up numbers ----------------------------------------------------------


class OddOffset(Exception):
    """The current time zone is not a whole number of hours from UTC in the window."""


@dataclass
class Parts:
    """Additive pieces of the statistics, from live rows or from rolled days."""

    labels: Counter
    over_time: Counter  # (bucket start, label) -> n
    score_bins: Counter
    statuses: Counter
    throughput: Counter  # bucket start -> n
    latency: Counter  # log bin -> n
    backend: Counter

    def __add__(self, other):
        return Parts(*(getattr(self, name) + getattr(other, name)
                       for name in self.__dataclass_fields__))


def rolled_parts(split_, bucket):
    """The :class:`Parts` of the rolled days of ``split_``, by local ``bucket`` ("hour"/"day").

    Time buckets are in the current time zone, like those of the live rows.

    Raises:
        OddOffset: a rolled hour does not start a whole local hour (a zone such as
            Asia/Kolkata); the caller then reads everything live.
    """
    from django_textclass.models import RollupCount, RollupHistogram, Status

    alias = split_.live.db
    conditions = split_.conditions
    counts = RollupCount.objects.using(alias).filter(split_.day_filter(), **conditions)
    statuses = Counter(dict(
        counts.values("status").annotate(n=Sum("requests")).values_list("status", "n")
    ))
    succeeded = counts.filter(status=Status.SUCCEEDED).exclude(top_label="")
    labels = Counter(dict(
        succeeded.values("top_label").annotate(n=Sum("requests")).values_list("top_label", "n")
    ))
    _check_whole_hours(split_.ranges)
    # The rolled hours are whole UTC hours, so in a whole-hour zone truncating them to
    # the local hour or day, in SQL, gives exactly the live rows' buckets.
    over_time = Counter({
        (key, label): n
        for key, label, n in succeeded.annotate(bucket=Trunc("hour", bucket))
        .values("bucket", "top_label").annotate(n=Sum("requests"))
        .values_list("bucket", "top_label", "n")
    })
    throughput = Counter(dict(
        counts.filter(finished_hour__isnull=False).annotate(bucket=Trunc("finished_hour", bucket))
        .values("bucket").annotate(n=Sum("requests")).values_list("bucket", "n")
    ))
    histograms = {metric: Counter() for metric in RollupHistogram.Metric.values}
    if conditions.get("status", Status.SUCCEEDED) == Status.SUCCEEDED:
        hist_conditions = {k: v for k, v in conditions.items() if k != "status"}
        bins = (RollupHistogram.objects.using(alias).filter(split_.day_filter(), **hist_conditions)
                .values("metric", "bin").annotate(n=Sum("requests"))
                .values_list("metric", "bin", "n"))
        for metric, index, n in bins:
            histograms[metric][index] += n
    return Parts(
        labels=labels, over_time=over_time, score_bins=histograms["score"], statuses=statuses,
        throughput=throughput, latency=histograms["latency"], backend=histograms["backend"],
    )


def rolled_model_counts(split_):
    """``{model_id: n}``: requests of the rolled days of ``split_``, per model."""
    from django_textclass.models import RollupCount

    return dict(
        RollupCount.objects.using(split_.live.db).filter(split_.day_filter(), **split_.conditions)
        .values("model_id").annotate(n=Sum("requests")).values_list("model_id", "n")
    )


def _check_whole_hours(ranges):
    """Raise :class:`OddOffset` unless the current zone is whole hours from UTC on ``ranges``.

    Checked at 00:00 and 12:00 UTC of every day: no zone keeps a part-hour offset for
    less than half a day.
    """
    zone = timezone.get_current_timezone()
    for first, stop in ranges:
        for i in range((stop - first).days * 2):
            offset = (day_start(first) + timedelta(hours=12 * i)).astimezone(zone).utcoffset()
            if offset.total_seconds() % 3600:
                raise OddOffset(str(zone))
