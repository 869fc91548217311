"""Reading the roll-up: which part of a query it answers, and its numbers for that part."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db.models import Q, Sum
from django.db.models.functions import Trunc
from django.db.models.lookups import Exact, GreaterThanOrEqual, LessThan
from django.db.models.sql.where import AND, WhereNode
from django.utils import timezone

from django_textclass.rollup.writes import UTC, app_models, day_start, enabled

#: Fields a query may filter on by equality and still be answered from the roll-up.
SLICE_FIELDS = ("model_id", "status", "top_label")


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
        Q(
            **{
                key: value
                for key, value in (("created_at__gte", low), ("created_at__lt", high))
                if value is not None
            }
        )
        for low, high in gaps
        if low is None or high is None or low < high
    ]
    # Built afresh rather than by filtering ``queryset``: the query is nothing but these
    # conditions and its window (_describe checked), and without the window's own range
    # PostgreSQL reads just the edges (a BitmapOr) instead of the whole window.
    live = app_models().ClassificationRequest.objects.using(queryset.db).order_by()
    live = live.filter(reduce(or_, live_ranges), **conditions) if live_ranges else live.none()
    return Split(conditions=conditions, ranges=ranges, live=live)


def _rolled_ranges(alias, start, end):
    models = app_models()
    days = (
        models.RollupDay.objects.using(alias)
        .filter(rolled_at__isnull=False)
        .exclude(day__in=models.RollupDirtyDay.objects.using(alias).values("day"))
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
    if (
        query.model is not ClassificationRequest
        or query.is_sliced
        or query.distinct
        or query.combinator
        or query.annotations
        or len(query.alias_map) > 1
    ):
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
        return Parts(
            *(getattr(self, name) + getattr(other, name) for name in self.__dataclass_fields__)
        )


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
    statuses = Counter(
        dict(counts.values("status").annotate(n=Sum("requests")).values_list("status", "n"))
    )
    succeeded = counts.filter(status=Status.SUCCEEDED).exclude(top_label="")
    labels = Counter(
        dict(
            succeeded.values("top_label").annotate(n=Sum("requests")).values_list("top_label", "n")
        )
    )
    _check_whole_hours(split_.ranges)
    # The rolled hours are whole UTC hours, so in a whole-hour zone truncating them to
    # the local hour or day, in SQL, gives exactly the live rows' buckets.
    over_time = Counter(
        {
            (key, label): n
            for key, label, n in succeeded.annotate(bucket=Trunc("hour", bucket))
            .values("bucket", "top_label")
            .annotate(n=Sum("requests"))
            .values_list("bucket", "top_label", "n")
        }
    )
    throughput = Counter(
        dict(
            counts.filter(finished_hour__isnull=False)
            .annotate(bucket=Trunc("finished_hour", bucket))
            .values("bucket")
            .annotate(n=Sum("requests"))
            .values_list("bucket", "n")
        )
    )
    histograms = {metric: Counter() for metric in RollupHistogram.Metric.values}
    if conditions.get("status", Status.SUCCEEDED) == Status.SUCCEEDED:
        hist_conditions = {k: v for k, v in conditions.items() if k != "status"}
        bins = (
            RollupHistogram.objects.using(alias)
            .filter(split_.day_filter(), **hist_conditions)
            .values("metric", "bin")
            .annotate(n=Sum("requests"))
            .values_list("metric", "bin", "n")
        )
        for metric, index, n in bins:
            histograms[metric][index] += n
    return Parts(
        labels=labels,
        over_time=over_time,
        score_bins=histograms["score"],
        statuses=statuses,
        throughput=throughput,
        latency=histograms["latency"],
        backend=histograms["backend"],
    )


def rolled_model_counts(split_):
    """``{model_id: n}``: requests of the rolled days of ``split_``, per model."""
    from django_textclass.models import RollupCount

    return dict(
        RollupCount.objects.using(split_.live.db)
        .filter(split_.day_filter(), **split_.conditions)
        .values("model_id")
        .annotate(n=Sum("requests"))
        .values_list("model_id", "n")
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
