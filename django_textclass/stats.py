"""Aggregates of classification history, shared by the admin dashboard and the REST API.

Every number is computed in the database with one grouped query per chart; nothing
here loads rows into Python. The caller decides *which* rows count (owner, model,
time window) by filtering the queryset it passes in::

    from django_textclass.stats import compute_stats
    compute_stats(ClassificationRequest.objects.filter(model_id=m), bucket="hour")

Percentiles use ``percentile_cont`` on PostgreSQL (one query for p50/p90/p99). Other
databases get a portable fallback with the same definition (linear interpolation
between the two closest ranks): one ``COUNT`` plus one ``ORDER BY ... LIMIT 2 OFFSET k``
per percentile. It is correct everywhere and fast enough for SQLite-sized tables.

Counts are ``COUNT(*)``, not of the primary key: the same numbers, and PostgreSQL can
then answer them from an index that does not hold the id (an index-only scan; see
docs/performance.md).
"""

import math
from contextlib import contextmanager

from django.db import connections, router, transaction
from django.db.models import (
    Aggregate,
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Value,
    When,
)
from django.db.models.functions import Trunc

from django_textclass.models import Status

#: Time buckets accepted by :func:`compute_stats`.
BUCKETS = ("hour", "day")
#: Percentiles reported for latencies, as ``{key: fraction}``.
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
#: Number of equal-width bins of the top-score histogram over [0, 1].
SCORE_BINS = 10
#: ``work_mem`` of the dashboard's transaction on PostgreSQL (see :func:`reporting_memory`).
REPORT_WORK_MEM = "64MB"
#: ``parallel_tuple_cost`` of the same transaction (see :func:`reporting_memory`).
REPORT_PARALLEL_TUPLE_COST = "0.001"


def compute_stats(queryset, *, bucket="day"):
    """Every number of the label-distribution dashboard for ``queryset``.

    Args:
        queryset: ``ClassificationRequest`` rows to describe, already filtered by the
            caller (owner, model, time window); it must not be sliced. Its ordering
            is ignored.
        bucket: ``"hour"`` or ``"day"``: the width of the time series buckets, in the
            current time zone.

    Returns:
        A JSON-serialisable dict::

            label_distribution  [{label, count, share}]  top labels of succeeded requests,
                                most frequent first; shares sum to 1
            labels_over_time    [{bucket, label, count}]  by creation time, ISO 8601 buckets
            score_histogram     [{lower, upper, count}]   top_score in SCORE_BINS bins
            status_counts       {status: n}               all five statuses, zeros included
            failure_rate        failed / (succeeded + failed), or None when both are 0
            latency_ms          {p50, p90, p99}           created -> finished, succeeded only
            backend_ms          {p50, p90, p99}           duration of the backend call
            throughput          [{bucket, count}]         requests that reached a final
                                                          status, by finish time

        Percentiles are None when no row qualifies.

    Raises:
        ValueError: ``bucket`` is not one of :data:`BUCKETS`.
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
    queryset = queryset.order_by()
    with reporting_memory(queryset.db):
        status_counts = count_statuses(queryset)
        latency_ms, backend_ms = latency_and_backend_percentiles(queryset)
        return {
            "label_distribution": label_distribution(queryset),
            "labels_over_time": labels_over_time(queryset, bucket),
            "score_histogram": score_histogram(queryset),
            "status_counts": status_counts,
            "failure_rate": failure_rate(status_counts),
            "latency_ms": latency_ms,
            "backend_ms": backend_ms,
            "throughput": throughput(queryset, bucket),
        }


@contextmanager
def reporting_memory(alias):
    """On PostgreSQL, tune the planner for this transaction's aggregates (``SET LOCAL``).

    :data:`REPORT_WORK_MEM`: the percentile queries sort one value per succeeded
    request; with the default ``work_mem`` (4 MB) a million values spill to disk.

    :data:`REPORT_PARALLEL_TUPLE_COST`: PostgreSQL cannot estimate how many distinct
    values ``date_trunc(...)`` or the histogram's ``CASE`` take, so it expects one group
    per row and, passing that many rows from parallel workers being dear, aggregates
    in one process. The groups are in fact few (buckets x labels), so moving them is
    cheap; with the default (0.1) the all-time views of a million rows run serially.

    Both settings end with the transaction; other queries of the connection keep the
    server's values.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql" or not REPORT_WORK_MEM:
        yield
        return
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('work_mem', %s, true), set_config('parallel_tuple_cost', %s, true)",
            [REPORT_WORK_MEM, REPORT_PARALLEL_TUPLE_COST],
        )
        yield


def _succeeded(queryset):
    return queryset.order_by().filter(status=Status.SUCCEEDED).exclude(top_label="")


def label_distribution(queryset):
    """``[{label, count, share}]`` of the top labels of succeeded requests, most frequent first."""
    rows = list(
        _succeeded(queryset).values("top_label").annotate(count=Count("*"))
        .order_by("-count", "top_label")
    )
    total = sum(row["count"] for row in rows)
    return [
        {"label": row["top_label"], "count": row["count"], "share": row["count"] / total}
        for row in rows
    ]


def labels_over_time(queryset, bucket="day"):
    """``[{bucket, label, count}]``: succeeded requests per creation bucket and top label.

    Sorted by bucket, then label, here rather than by ``ORDER BY`` (see
    :func:`_in_bucket_order`).
    """
    rows = (
        _succeeded(queryset).annotate(bucket=Trunc("created_at", bucket))
        .values("bucket", "top_label").annotate(count=Count("*"))
    )
    return [
        {"bucket": row["bucket"].isoformat(), "label": row["top_label"], "count": row["count"]}
        for row in _in_bucket_order(rows, "top_label")
    ]


def score_histogram(queryset):
    """``[{lower, upper, count}]``: top scores of succeeded requests in equal bins over [0, 1].

    Bin ``i`` holds ``lower <= score < upper``; the last bin also holds 1.0. The
    bin edges are compared as SQL literals, so both databases agree exactly.
    """
    edges = [round(i / SCORE_BINS, 10) for i in range(SCORE_BINS + 1)]
    bin_of = Case(
        *[When(top_score__lt=edges[i + 1], then=Value(i)) for i in range(SCORE_BINS - 1)],
        default=Value(SCORE_BINS - 1),
        output_field=IntegerField(),
    )
    counts = dict(
        _succeeded(queryset).filter(top_score__isnull=False).annotate(bin=bin_of)
        .values("bin").annotate(count=Count("*")).values_list("bin", "count")
    )
    return [
        {"lower": edges[i], "upper": edges[i + 1], "count": counts.get(i, 0)}
        for i in range(SCORE_BINS)
    ]


def count_statuses(queryset):
    """``{status: n}`` for all five statuses, zeros included."""
    counts = dict(
        queryset.order_by().values("status").annotate(n=Count("*")).values_list("status", "n")
    )
    return {status: counts.get(status, 0) for status in Status.values}


def failure_rate(status_counts):
    """``failed / (succeeded + failed)`` from :func:`count_statuses`, or None when both are 0."""
    done = status_counts[Status.SUCCEEDED] + status_counts[Status.FAILED]
    return status_counts[Status.FAILED] / done if done else None


def latency_percentiles(queryset):
    """``{p50, p90, p99}`` of created -> finished, in ms, over succeeded requests."""
    return latency_and_backend_percentiles(queryset)[0]


def backend_percentiles(queryset):
    """``{p50, p90, p99}`` of the backend call, in ms, over succeeded requests that made one.

    Requests answered from the result cache made no call and are left out.
    """
    return latency_and_backend_percentiles(queryset)[1]


def latency_and_backend_percentiles(queryset):
    """``(latency_ms, backend_ms)``, each ``{p50, p90, p99}``, over succeeded requests.

    On PostgreSQL both come from one scan (``percentile_cont`` skips NULLs, so rows
    without a backend call drop out of the second set by themselves).
    """
    rows = queryset.order_by().filter(status=Status.SUCCEEDED)
    elapsed = ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())
    if connections[queryset.db].vendor == "postgresql":
        result = rows.aggregate(
            **{f"latency_{key}": PercentileCont(fraction, _EpochMilliseconds(elapsed))
               for key, fraction in PERCENTILES.items()},
            **{f"backend_{key}": PercentileCont(fraction, F("backend_ms"))
               for key, fraction in PERCENTILES.items()},
        )
        return tuple(
            {key: _round(result[f"{prefix}_{key}"]) for key in PERCENTILES}
            for prefix in ("latency", "backend")
        )
    return (
        percentiles(rows.filter(finished_at__isnull=False), elapsed),
        percentiles(rows.filter(backend_ms__isnull=False), F("backend_ms")),
    )


def throughput(queryset, bucket="day"):
    """``[{bucket, count}]``: requests that reached a final status, per finish bucket."""
    rows = (
        queryset.order_by().filter(finished_at__isnull=False)
        .annotate(bucket=Trunc("finished_at", bucket))
        .values("bucket").annotate(count=Count("*"))
    )
    return [
        {"bucket": row["bucket"].isoformat(), "count": row["count"]}
        for row in _in_bucket_order(rows)
    ]


def _in_bucket_order(rows, *then):
    """``rows`` (``{"bucket": ..., ...}`` dicts, a few per bucket) sorted by bucket, then ``then``.

    Why not ``ORDER BY``: PostgreSQL expects one ``date_trunc`` group per row (it has
    no statistics on the expression), so when asked for groups in bucket order it
    sorts every row to group them, spilling to disk on a million rows; without
    ``ORDER BY`` it hashes them into the few real groups. Labels then sort by code
    point, as under the ``C`` collation and on SQLite.
    """
    return sorted(rows, key=lambda row: (row["bucket"], *(row[key] for key in then)))


# --- percentiles --------------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate ``percentile_cont(f) WITHIN GROUP (ORDER BY x)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, fraction, expression, **extra):
        # A float we choose (never user input) inlined as a literal: PostgreSQL needs a
        # constant here, and every call of one query then shares a single sort.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


class _EpochMilliseconds(Func):
    """An interval as milliseconds (double precision) on PostgreSQL.

    The same value as ``(EXTRACT(EPOCH FROM x) * 1000.0)::double precision``, bit for
    bit, without its ``numeric`` arithmetic (a third of the latency query's time on a
    million rows): ``date_part`` gives the seconds as a double, close enough for
    ``ROUND(... * 1e6)`` to recover the exact whole microseconds (for any interval
    shorter than about 30 years), and one division by 1000 then rounds correctly.
    """

    template = "(ROUND(date_part('epoch', %(expressions)s) * 1000000.0) / 1000.0)"
    output_field = FloatField()


def percentiles(queryset, expression):
    """``{p50, p90, p99}`` of ``expression`` (a number of ms, or a duration) over ``queryset``.

    Values follow ``percentile_cont``: linear interpolation between the closest ranks.
    Each is rounded to 0.001 ms (so both code paths report the same figures), or
    None when ``queryset`` is empty.
    """
    is_duration = isinstance(getattr(expression, "output_field", None), DurationField)
    if connections[queryset.db].vendor == "postgresql":
        value = _EpochMilliseconds(expression) if is_duration else expression
        result = queryset.aggregate(**{
            key: PercentileCont(fraction, value) for key, fraction in PERCENTILES.items()
        })
        return {key: _round(result[key]) for key in PERCENTILES}
    return _percentiles_by_offset(queryset, expression, is_duration)


def _percentiles_by_offset(queryset, expression, is_duration):
    ordered = queryset.annotate(_value=expression).order_by("_value").values_list(
        "_value", flat=True
    )
    total = queryset.count()
    result = {}
    for key, fraction in PERCENTILES.items():
        if not total:
            result[key] = None
            continue
        position = fraction * (total - 1)
        low = math.floor(position)
        values = list(ordered[low : low + 2])
        if is_duration:
            values = [value.total_seconds() * 1000.0 for value in values]
        lower = float(values[0])
        upper = float(values[1]) if len(values) > 1 else lower
        result[key] = _round(lower + (upper - lower) * (position - low))
    return result


def _round(value):
    return None if value is None else round(float(value), 3)


# --- bounded choices for filters ----------------------------------------------------------
#
# The admin's filters need "which models / labels / owners exist". SELECT DISTINCT
# reads the whole table; these walk an index instead (a "loose index scan": find the
# smallest value, then the smallest value greater than that, ...), so the cost grows
# with the number of distinct values, not with the number of rows.


def _walk(column, *, where="", params=(), limit):
    from django_textclass.models import ClassificationRequest

    connection = connections[router.db_for_read(ClassificationRequest)]
    quote = connection.ops.quote_name
    table, col = quote(ClassificationRequest._meta.db_table), quote(column)
    extra = f" AND {where}" if where else ""
    # Identifiers are quoted by the database backend; values go as parameters.
    sql = (
        f"WITH RECURSIVE walk(v) AS ("  # noqa: S608
        f" SELECT MIN({col}) FROM {table} WHERE {col} IS NOT NULL{extra}"
        f" UNION ALL"
        f" SELECT (SELECT MIN({col}) FROM {table} WHERE {col} > walk.v{extra})"
        f" FROM walk WHERE walk.v IS NOT NULL"
        f") SELECT v FROM walk WHERE v IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *params, limit])
        return [row[0] for row in cursor.fetchall()]


def known_models(limit=200):
    """Model ids that have requests, sorted (at most ``limit``); one indexed walk."""
    return _walk("model_id", limit=limit)


def known_labels(model_id=None, limit=200):
    """Top labels that occur, sorted; only ``model_id``'s when given (at most ``limit``).

    Walks the ``(model_id, top_label)`` index once per model, so it stays cheap on
    large tables as long as models and labels are few (they are: a classifier has a
    fixed label set).
    """
    models = [model_id] if model_id else known_models(limit)
    labels = set()
    for model in models:
        labels.update(_walk("top_label", where="model_id = %s", params=(model,), limit=limit))
    labels.discard("")
    return sorted(labels)[:limit]


def known_owner_ids(limit=200):
    """Primary keys of users who own requests, sorted (at most ``limit``); one indexed walk."""
    return _walk("owner_id", limit=limit)
