"""Aggregates of classification history, shared by the admin dashboard and the REST API.

Every number is computed in the database with one grouped query per chart; nothing
here loads rows into Python. The caller decides *which* rows count (owner, model,
time window) by filtering the queryset it passes in::

    from django_textclass.stats import compute_stats
    compute_stats(ClassificationRequest.objects.filter(model_id=m), bucket="hour")

Days of the window that the daily roll-up has summed are read from it instead of the
requests table (:mod:`django_textclass.rollup`): then each chart is one grouped query
over the roll-up plus one over the rows of the rest of the window.

Percentiles use ``percentile_cont`` on PostgreSQL (one query for p50/p90/p99). Other
databases get a portable fallback with the same definition (linear interpolation
between the two closest ranks): one ``COUNT`` plus one ``ORDER BY ... LIMIT 2 OFFSET k``
per percentile. It is correct everywhere and fast enough for SQLite-sized tables.

Counts are ``COUNT(*)``, not of the primary key: the same numbers, and PostgreSQL can
then answer them from an index that does not hold the id (an index-only scan; see
docs/performance.md).
"""

import math
from collections import Counter
from contextlib import contextmanager

from django.db import connections, router, transaction
from django.db.models import Aggregate, Count, DurationField, F, FloatField, Max, Q
from django.db.models.functions import Trunc

from django_textclass import rollup
from django_textclass.models import Status

#: Time buckets accepted by :func:`compute_stats`.
BUCKETS = ("hour", "day")
#: Percentiles reported for latencies, as ``{key: fraction}``.
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
#: Number of equal-width bins of the top-score histogram over [0, 1].
SCORE_BINS = rollup.SCORE_BINS
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
            percentiles_estimated  bool                   see below

        Percentiles are None when no row qualifies.

    When the query filters only by model, status, top label and a creation window, days
    of the window that the daily roll-up has summed are read from it
    (:mod:`django_textclass.rollup`), and only the rest from the requests table. Counts
    and shares are exact either way; percentiles then come from logarithmic bins, within
    1 % of the exact value, and ``percentiles_estimated`` is true.

    Raises:
        ValueError: ``bucket`` is not one of :data:`BUCKETS`.
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, not {bucket!r}")
    queryset = queryset.order_by()
    with reporting_memory(queryset.db):
        cut = rollup.split(queryset)
        if cut is not None:
            try:
                parts = rollup.rolled_parts(cut, bucket) + live_parts(
                    cut.live, bucket, histograms=True
                )
            except rollup.OddOffset:
                cut = None
        if cut is None:
            parts = live_parts(queryset, bucket, histograms=False)
            latency_ms, backend_ms = latency_and_backend_percentiles(queryset)
        else:
            latency_ms, backend_ms = (
                {
                    key: _round(value)
                    for key, value in rollup.histogram_percentiles(counts, PERCENTILES).items()
                }
                for counts in (parts.latency, parts.backend)
            )
    return _report(parts, latency_ms, backend_ms, estimated=cut is not None)


def requests_per_model(queryset):
    """``[(model_id, n)]``: how many requests of ``queryset`` each model has, most first.

    Rolled-up days are read from the roll-up, like :func:`compute_stats`.
    """
    queryset = queryset.order_by()
    counts = Counter()
    cut = rollup.split(queryset)
    if cut is not None:
        counts.update(rollup.rolled_model_counts(cut))
        queryset = cut.live
    counts.update(
        dict(queryset.values("model_id").annotate(n=Count("*")).values_list("model_id", "n"))
    )
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def failures_by_code(queryset, *, limit=10):
    """The failed requests of ``queryset`` by error code, most frequent first.

    Read live (the roll-up keeps no error codes), in two queries over the failed rows
    whatever their number: the counts and the last failure time of each code, then the rows
    that failed last for the codes shown (their messages). A correlated subquery in the first
    would be grouped on, and so run once per failed row.

    Returns:
        ``[{"error_code", "count", "latest_at", "latest_message"}]``, at most ``limit``.
    """
    failed = queryset.order_by().filter(status=Status.FAILED)
    rows = (
        failed.values("error_code")
        .annotate(n=Count("*"), latest_at=Max("finished_at"))
        .values_list("error_code", "n", "latest_at")
    )
    rows = sorted(rows, key=lambda row: (-row[1], row[0]))[:limit]
    latest = Q(pk__in=[])
    for code, _n, at in rows:
        latest |= (
            Q(error_code=code, finished_at=at)
            if at is not None
            else Q(error_code=code, finished_at__isnull=True)
        )
    messages = {}
    # Ties on the time: the highest id wins, as "-finished_at, -pk" would order them.
    for code, message in (
        (
            failed.filter(latest)
            .order_by("error_code", "pk")
            .values_list("error_code", "error_message")
        )
        if rows
        else ()
    ):
        messages[code] = message
    return [
        {"error_code": code, "count": n, "latest_at": at, "latest_message": messages.get(code, "")}
        for code, n, at in rows
    ]


def _report(parts, latency_ms, backend_ms, *, estimated):
    labels = sorted(parts.labels.items(), key=lambda item: (-item[1], item[0]))
    total = sum(parts.labels.values())
    edges = rollup.score_edges()
    status_counts = {status: parts.statuses.get(status, 0) for status in Status.values}
    return {
        "label_distribution": [
            {"label": label, "count": n, "share": n / total} for label, n in labels
        ],
        "labels_over_time": [
            {"bucket": key.isoformat(), "label": label, "count": n}
            for (key, label), n in sorted(parts.over_time.items())
        ],
        "score_histogram": [
            {"lower": edges[i], "upper": edges[i + 1], "count": parts.score_bins.get(i, 0)}
            for i in range(SCORE_BINS)
        ],
        "status_counts": status_counts,
        "failure_rate": failure_rate(status_counts),
        "latency_ms": latency_ms,
        "backend_ms": backend_ms,
        "throughput": [
            {"bucket": key.isoformat(), "count": n} for key, n in sorted(parts.throughput.items())
        ],
        "percentiles_estimated": estimated,
    }


def live_parts(queryset, bucket, *, histograms):
    """The additive :class:`~django_textclass.rollup.Parts` of ``queryset``, read from its rows.

    One grouped query per chart. With ``histograms``, the two latencies are also
    counted in the roll-up's logarithmic bins (to be merged with rolled days).
    """
    succeeded = _succeeded(queryset)
    over_time = (
        succeeded.annotate(bucket=Trunc("created_at", bucket))
        .values("bucket", "top_label")
        .annotate(n=Count("*"))
        .values_list("bucket", "top_label", "n")
    )
    scores = (
        succeeded.filter(top_score__isnull=False)
        .annotate(bin=rollup.score_bin())
        .values("bin")
        .annotate(n=Count("*"))
        .values_list("bin", "n")
    )
    # No ORDER BY in SQL: PostgreSQL has no statistics on date_trunc(...), expects one
    # group per row and, asked for bucket order, sorts every row (spilling to disk on a
    # million); unordered, it hashes them into the few real groups. Python sorts them.
    finished = (
        queryset.filter(finished_at__isnull=False)
        .annotate(bucket=Trunc("finished_at", bucket))
        .values("bucket")
        .annotate(n=Count("*"))
        .values_list("bucket", "n")
    )
    latency, backend = Counter(), Counter()
    if histograms:
        vendor = connections[queryset.db].vendor
        rows = queryset.filter(status=Status.SUCCEEDED)
        for counts, subset, value in (
            (latency, rows.filter(finished_at__isnull=False), rollup.elapsed_ms(vendor)),
            (backend, rows.filter(backend_ms__isnull=False), F("backend_ms")),
        ):
            bins = subset.annotate(bin=rollup.log_bin(value)).values("bin").annotate(n=Count("*"))
            counts.update({int(row["bin"]): row["n"] for row in bins})
    return rollup.Parts(
        labels=Counter(
            dict(succeeded.values("top_label").annotate(n=Count("*")).values_list("top_label", "n"))
        ),
        over_time=Counter({(key, label): n for key, label, n in over_time}),
        score_bins=Counter(dict(scores)),
        statuses=Counter(
            dict(queryset.values("status").annotate(n=Count("*")).values_list("status", "n"))
        ),
        throughput=Counter(dict(finished)),
        latency=latency,
        backend=backend,
    )


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


def failure_rate(status_counts):
    """``failed / (succeeded + failed)`` from ``{status: n}``, or None when both are 0."""
    done = status_counts[Status.SUCCEEDED] + status_counts[Status.FAILED]
    return status_counts[Status.FAILED] / done if done else None


def latency_and_backend_percentiles(queryset):
    """``(latency_ms, backend_ms)``, each ``{p50, p90, p99}``, over succeeded requests.

    On PostgreSQL both come from one scan (``percentile_cont`` skips NULLs, so rows
    without a backend call drop out of the second set by themselves).
    """
    rows = queryset.order_by().filter(status=Status.SUCCEEDED)
    elapsed = rollup.elapsed()
    if connections[queryset.db].vendor == "postgresql":
        result = rows.aggregate(
            **{
                f"latency_{key}": PercentileCont(fraction, rollup.EpochMilliseconds(elapsed))
                for key, fraction in PERCENTILES.items()
            },
            **{
                f"backend_{key}": PercentileCont(fraction, F("backend_ms"))
                for key, fraction in PERCENTILES.items()
            },
        )
        return tuple(
            {key: _round(result[f"{prefix}_{key}"]) for key in PERCENTILES}
            for prefix in ("latency", "backend")
        )
    return (
        percentiles(rows.filter(finished_at__isnull=False), elapsed),
        percentiles(rows.filter(backend_ms__isnull=False), F("backend_ms")),
    )


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


def percentiles(queryset, expression):
    """``{p50, p90, p99}`` of ``expression`` (a number of ms, or a duration) over ``queryset``.

    Values follow ``percentile_cont``: linear interpolation between the closest ranks.
    Each is rounded to 0.001 ms (so both code paths report the same figures), or
    None when ``queryset`` is empty.
    """
    is_duration = isinstance(getattr(expression, "output_field", None), DurationField)
    if connections[queryset.db].vendor == "postgresql":
        value = rollup.EpochMilliseconds(expression) if is_duration else expression
        result = queryset.aggregate(
            **{key: PercentileCont(fraction, value) for key, fraction in PERCENTILES.items()}
        )
        return {key: _round(result[key]) for key in PERCENTILES}
    return _percentiles_by_offset(queryset, expression, is_duration)


def _percentiles_by_offset(queryset, expression, is_duration):
    ordered = (
        queryset.annotate(_value=expression).order_by("_value").values_list("_value", flat=True)
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
