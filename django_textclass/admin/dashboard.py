"""The "Label distributions" page: charts and tables of :func:`stats.compute_stats`."""

from django.utils import formats, timezone
from django.utils.translation import gettext as _

from django_textclass.admin import charts
from django_textclass.stats import PERCENTILES, compute_stats

#: Labels drawn as their own bar or series; the rest are summed as "other".
TOP_LABELS = 8
OTHER = "(other)"


def build(queryset, bucket):
    """The template context of the dashboard for the filtered ``queryset``.

    Returns:
        ``{"stats": ..., "charts": [{"id", "title", "svg", "table"}], "bucket": ...}``
        where each ``table`` is ``{"headers": [...], "rows": [[...]]}`` with the same
        numbers as its chart.
    """
    stats = compute_stats(queryset, bucket=bucket)
    return {
        "stats": stats,
        "bucket": bucket,
        "charts": [
            _label_share(stats),
            _labels_over_time(stats, bucket),
            _score_histogram(stats),
            _statuses(stats),
            _latency(stats),
            _throughput(stats, bucket),
        ],
    }


def _percent(share):
    return "–" if share is None else f"{share * 100:.1f} %"


def _ms(value):
    return "–" if value is None else f"{value:,.1f} ms"


def _label_share(stats):
    rows = stats["label_distribution"]
    shown = [(row["label"], row["share"]) for row in rows[:TOP_LABELS]]
    rest = sum(row["share"] for row in rows[TOP_LABELS:])
    if rest:
        shown.append((OTHER, rest))
    return {
        "id": "label-share",
        "title": _("Share of each top label"),
        "svg": charts.hbars(
            shown, title=_("Share of each top label"), value_text=_percent,
            description=_("Horizontal bars: the share of succeeded requests whose best "
                          "label is each label."),
        ),
        "table": {
            "headers": [_("Label"), _("Requests"), _("Share")],
            "rows": [[row["label"], row["count"], _percent(row["share"])] for row in rows],
        },
    }


def _bucket_text(bucket):
    def text(key):
        if bucket == "day":
            return formats.date_format(key, "SHORT_DATE_FORMAT")
        return formats.date_format(_local(key), "SHORT_DATETIME_FORMAT")
    return text


def _local(moment):
    return timezone.localtime(moment)


def _labels_over_time(stats, bucket):
    totals = {row["label"]: row["count"] for row in stats["label_distribution"]}
    top = sorted(totals, key=lambda label: (-totals[label], label))[:TOP_LABELS]
    series = top + ([OTHER] if len(totals) > len(top) else [])
    by_key = {}
    for row in stats["labels_over_time"]:
        key = charts.bucket_key(row["bucket"], bucket)
        name = row["label"] if row["label"] in top else OTHER
        values = by_key.setdefault(key, {})
        values[name] = values.get(name, 0) + row["count"]
    axis = charts.time_axis([row["bucket"] for row in stats["labels_over_time"]], bucket)
    columns = [(key, by_key.get(key, {})) for key in axis]
    text = _bucket_text(bucket)
    return {
        "id": "labels-over-time",
        "title": _("Top labels over time (per %(bucket)s)") % {"bucket": _(bucket)},
        "svg": charts.stacked_columns(
            columns, series, x_text=text,
            title=_("Top labels over time"),
            description=_("Stacked columns: succeeded requests per time bucket, split by "
                          "their best label."),
        ),
        "table": {
            "headers": [_("Period"), *series],
            "rows": [[text(key), *[values.get(name, 0) for name in series]]
                     for key, values in columns if values],
        },
    }


def _score_histogram(stats):
    rows = stats["score_histogram"]
    return {
        "id": "score-histogram",
        "title": _("Confidence of the top label"),
        "svg": charts.columns(
            [(f"{row['lower']:.1f}", row["count"]) for row in rows],
            title=_("Confidence of the top label"),
            description=_("Histogram: succeeded requests by the score of their best label, "
                          "in ten bins from 0 to 1."),
        ),
        "table": {
            "headers": [_("Score from"), _("to (exclusive, 1.0 inclusive)"), _("Requests")],
            "rows": [[f"{row['lower']:.1f}", f"{row['upper']:.1f}", row["count"]]
                     for row in rows],
        },
    }


def _statuses(stats):
    counts = stats["status_counts"]
    return {
        "id": "statuses",
        "title": _("Requests by status (failure rate %(rate)s)")
        % {"rate": _percent(stats["failure_rate"])},
        "svg": charts.hbars(
            list(counts.items()), colours=charts.STATUS_COLOURS,
            value_text=lambda n: f"{n:,}",
            title=_("Requests by status"),
            description=_("Horizontal bars: how many requests are in each status."),
        ),
        "table": {
            "headers": [_("Status"), _("Requests")],
            "rows": [*[[status, n] for status, n in counts.items()],
                     [_("failure rate: failed / (succeeded + failed)"),
                      _percent(stats["failure_rate"])]],
        },
    }


def _latency(stats):
    title = _("Latency percentiles")
    if stats["percentiles_estimated"]:
        title = _("Latency percentiles (within 1 percent: read from the daily roll-up)")
    bars = [(f"{_('end to end')} {key}", stats["latency_ms"][key] or 0) for key in PERCENTILES]
    bars += [(f"{_('backend call')} {key}", stats["backend_ms"][key] or 0) for key in PERCENTILES]
    return {
        "id": "latency",
        "title": title,
        "svg": charts.hbars(
            bars, value_text=lambda ms: f"{ms:,.0f} ms",
            colours={label: charts.PALETTE[0 if i < 3 else 1] for i, (label, _v) in
                     enumerate(bars)},
            title=_("Latency percentiles"),
            description=_("Horizontal bars: p50, p90 and p99 of the time from submission "
                          "to result, and of the backend call alone, in milliseconds."),
        ),
        "table": {
            "headers": [_("Percentile"), _("Submission to result"), _("Backend call")],
            "rows": [[key, _ms(stats["latency_ms"][key]), _ms(stats["backend_ms"][key])]
                     for key in PERCENTILES],
        },
    }


def _throughput(stats, bucket):
    counts = {charts.bucket_key(row["bucket"], bucket): row["count"]
              for row in stats["throughput"]}
    axis = charts.time_axis([row["bucket"] for row in stats["throughput"]], bucket)
    text = _bucket_text(bucket)
    return {
        "id": "throughput",
        "title": _("Throughput (finished requests per %(bucket)s)") % {"bucket": _(bucket)},
        "svg": charts.columns(
            [(key, counts.get(key, 0)) for key in axis], x_text=text, fill=charts.PALETTE[2],
            title=_("Throughput"),
            description=_("Columns: requests that reached a final status in each time "
                          "bucket."),
        ),
        "table": {
            "headers": [_("Period"), _("Finished requests")],
            "rows": [[text(key), counts[key]] for key in axis if key in counts],
        },
    }

