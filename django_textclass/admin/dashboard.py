"""The "Label distributions" page: charts and tables of :func:`stats.compute_stats`.

Every bar, column piece and table row links to the history filtered to exactly the requests
it counts (``link``: the changelist URL with the dashboard's filters plus the bar's own), so
the page is where an investigation starts, not where it ends.
"""

import math
from datetime import timedelta

from django.utils import formats, timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from django_textclass.admin import charts, periods
from django_textclass.admin.comparison import compare, milliseconds, percent
from django_textclass.models import Status
from django_textclass.stats import PERCENTILES, compute_stats, failures_by_code

#: Labels drawn as their own bar or series; the rest are summed as "other".
TOP_LABELS = 8
OTHER = "(other)"
#: Error codes shown (the most frequent first).
TOP_ERROR_CODES = 10
#: Characters of an error message shown in the failures table.
MESSAGE_CHARS = 200
SUCCEEDED = {"status__exact": Status.SUCCEEDED}


def _no_link(params):
    return None


def build(queryset, bucket, *, link=None, span=None, previous=None):
    """The template context of the dashboard for the filtered ``queryset``.

    Args:
        queryset: the requests the dashboard's filters chose.
        bucket: ``"hour"`` or ``"day"``.
        link: ``link(params)`` is the URL of the history with the dashboard's filters and
            ``params`` on top (None: nothing links).
        span: ``(start, end)`` of the creation window, when the filters give one: the time
            buckets' links are narrowed to it.
        previous: the statistics of the previous period of the same length, or None.

    Returns:
        ``{"stats": ..., "charts": [{"id", "title", "svg", "table"}], "bucket": ...,
        "comparison": ...}`` where each ``table`` is ``{"headers": [...], "rows": [[...]],
        "links": [url or None per row]}`` with the same numbers as its chart.
    """
    link = link or _no_link
    stats = compute_stats(queryset, bucket=bucket)
    failures = failures_by_code(queryset, limit=TOP_ERROR_CODES)
    return {
        "stats": stats,
        "bucket": bucket,
        "failures": failures,
        "comparison": None if previous is None else compare(stats, previous),
        "charts": [
            _with_rows(chart)
            for chart in (
                _label_share(stats, link),
                *_label_charts(stats, bucket, link, span),
                _score_histogram(stats, link),
                _statuses(stats, link),
                _failures(failures, link),
                _latency(stats, link),
                _throughput(stats, bucket, link, span),
            )
        ],
    }


def _with_rows(chart):
    """Pair each table row with its link, for the template."""
    table = chart["table"]
    links = table.setdefault("links", [None] * len(table["rows"]))
    table["linked_rows"] = list(zip(table["rows"], links, strict=True))
    return chart


def bucket_bounds(key, bucket):
    """``(start, end)`` of the time bucket whose key is ``key`` (see ``charts.bucket_key``)."""
    if bucket == "day":
        return periods.local_midnight(key), periods.local_midnight(key + timedelta(days=1))
    return key, key + timedelta(hours=1)


def _bucket_params(field, key, bucket, span):
    start, end = periods.clip(bucket_bounds(key, bucket), span if field == "created_at" else None)
    return {f"{field}__gte": str(start), f"{field}__lt": str(end)}


_percent = percent
_ms = milliseconds


def _label_link(link, label):
    return link({**SUCCEEDED, "top_label": label})


def _label_share(stats, link):
    rows = stats["label_distribution"]
    shown = [(row["label"], row["share"]) for row in rows[:TOP_LABELS]]
    rest = sum(row["share"] for row in rows[TOP_LABELS:])
    if rest:
        shown.append((OTHER, rest))
    links = {row["label"]: _label_link(link, row["label"]) for row in rows}
    return {
        "id": "label-share",
        "title": _("Share of each top label"),
        "svg": charts.hbars(
            shown,
            title=_("Share of each top label"),
            value_text=_percent,
            links=links,
            description=_(
                "Horizontal bars: the share of succeeded requests whose best label is each label."
            ),
        ),
        "table": {
            "headers": [_("Label"), _("Requests"), _("Share")],
            "rows": [[row["label"], row["count"], _percent(row["share"])] for row in rows],
            "links": [links[row["label"]] for row in rows],
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


def _label_columns(stats, bucket):
    """``(series, columns)`` of the labels over time: the top labels, the rest as other."""
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
    return series, [(key, by_key.get(key, {})) for key in axis]


def _label_bucket_links(columns, bucket, link, span):
    """``{(key, label): url}`` and ``{key: url}`` (the whole bucket) of the label columns."""
    pieces, whole = {}, {}
    for key, values in columns:
        params = {**SUCCEEDED, **_bucket_params("created_at", key, bucket, span)}
        whole[key] = link(params)
        for name in values:
            if name != OTHER:
                pieces[(key, name)] = link({**params, "top_label": name})
    return pieces, whole


def _label_charts(stats, bucket, link, span):
    """The two charts of labels over time (counts, shares): one set of columns and links."""
    series, columns = _label_columns(stats, bucket)
    pieces, whole = _label_bucket_links(columns, bucket, link, span)
    texts = {key: _bucket_text(bucket)(key) for key, _values in columns}
    return (
        _labels_over_time(series, columns, pieces, whole, texts.get, bucket),
        _label_shares_over_time(series, columns, pieces, whole, texts.get, bucket),
    )


def _labels_over_time(series, columns, pieces, whole, text, bucket):
    return {
        "id": "labels-over-time",
        "title": _("Top labels over time (per %(bucket)s)") % {"bucket": _(bucket)},
        "svg": charts.stacked_columns(
            columns,
            series,
            x_text=text,
            links=pieces,
            title=_("Top labels over time"),
            description=_(
                "Stacked columns: succeeded requests per time bucket, split by their best label."
            ),
        ),
        "table": {
            "headers": [_("Period"), *series],
            "rows": [
                [text(key), *[values.get(name, 0) for name in series]]
                for key, values in columns
                if values
            ],
            "links": [whole[key] for key, values in columns if values],
        },
    }


def _label_shares_over_time(series, columns, pieces, whole, text, bucket):
    shares = []
    for key, values in columns:
        total = sum(values.values())
        shares.append((key, {name: n / total for name, n in values.items()} if total else {}))
    return {
        "id": "label-shares-over-time",
        "title": _("Share of each top label over time (per %(bucket)s)") % {"bucket": _(bucket)},
        "svg": charts.stacked_columns(
            shares,
            series,
            x_text=text,
            links=pieces,
            peak=1.0,
            y_text=lambda value: f"{value * 100:.0f} %",
            value_text=_percent,
            title=_("Share of each top label over time"),
            description=_(
                "Stacked columns of equal height: in each time bucket, the share "
                "of succeeded requests whose best label is each label."
            ),
        ),
        "table": {
            "headers": [_("Period"), *series],
            "rows": [
                [text(key), *[_percent(values.get(name, 0.0)) for name in series]]
                for key, values in shares
                if values
            ],
            "links": [whole[key] for key, values in shares if values],
        },
    }


def _score_histogram(stats, link):
    rows = stats["score_histogram"]
    links = [link({**SUCCEEDED, "top_score_bin": str(i)}) for i in range(len(rows))]
    return {
        "id": "score-histogram",
        "title": _("Confidence of the top label"),
        "svg": charts.columns(
            [(f"{row['lower']:.1f}", row["count"]) for row in rows],
            links={f"{row['lower']:.1f}": url for row, url in zip(rows, links, strict=True)},
            title=_("Confidence of the top label"),
            description=_(
                "Histogram: succeeded requests by the score of their best label, "
                "in ten bins from 0 to 1."
            ),
        ),
        "table": {
            "headers": [_("Score from"), _("to (exclusive, 1.0 inclusive)"), _("Requests")],
            "rows": [[f"{row['lower']:.1f}", f"{row['upper']:.1f}", row["count"]] for row in rows],
            "links": links,
        },
    }


def _statuses(stats, link):
    counts = stats["status_counts"]
    links = {status: link({"status__exact": status}) for status in counts}
    return {
        "id": "statuses",
        "title": _("Requests by status (failure rate %(rate)s)")
        % {"rate": _percent(stats["failure_rate"])},
        "svg": charts.hbars(
            list(counts.items()),
            colours=charts.STATUS_COLOURS,
            value_text=lambda n: f"{n:,}",
            links=links,
            title=_("Requests by status"),
            description=_("Horizontal bars: how many requests are in each status."),
        ),
        "table": {
            "headers": [_("Status"), _("Requests")],
            "rows": [
                *[[status, n] for status, n in counts.items()],
                [_("failure rate: failed / (succeeded + failed)"), _percent(stats["failure_rate"])],
            ],
            "links": [*links.values(), None],
        },
    }


def _failures(failures, link):
    links = {
        row["error_code"]: link({"status__exact": Status.FAILED, "error_code": row["error_code"]})
        for row in failures
    }
    return {
        "id": "failures",
        "title": _("Failures by error code"),
        "svg": charts.hbars(
            [(row["error_code"] or _("(none)"), row["count"]) for row in failures],
            value_text=lambda n: f"{n:,}",
            title=_("Failures by error code"),
            colours={
                row["error_code"] or _("(none)"): charts.STATUS_COLOURS["failed"]
                for row in failures
            },
            links={row["error_code"] or _("(none)"): links[row["error_code"]] for row in failures},
            description=_(
                "Horizontal bars: failed requests by the error code of their last "
                "attempt, the most frequent first."
            ),
        ),
        "table": {
            "headers": [_("Error code"), _("Requests"), _("Latest failure"), _("Latest message")],
            "rows": [
                [
                    row["error_code"] or _("(none)"),
                    row["count"],
                    "–"
                    if row["latest_at"] is None
                    else formats.date_format(_local(row["latest_at"]), "SHORT_DATETIME_FORMAT"),
                    Truncator(row["latest_message"]).chars(MESSAGE_CHARS) or "–",
                ]
                for row in failures
            ],
            "links": [links[row["error_code"]] for row in failures],
        },
    }


def _latency(stats, link):
    title = _("Latency percentiles")
    if stats["percentiles_estimated"]:
        title = _("Latency percentiles (within 1 percent: read from the daily roll-up)")
    bars = [(f"{_('end to end')} {key}", stats["latency_ms"][key] or 0) for key in PERCENTILES]
    bars += [(f"{_('backend call')} {key}", stats["backend_ms"][key] or 0) for key in PERCENTILES]
    # A percentile is a threshold: its bar opens the requests at least that slow.
    links = {}
    for key in PERCENTILES:
        for name, parameter, value in (
            ("end to end", "slower_than_ms", stats["latency_ms"][key]),
            ("backend call", "backend_slower_than_ms", stats["backend_ms"][key]),
        ):
            if value is not None:
                links[f"{_(name)} {key}"] = link({**SUCCEEDED, parameter: str(math.floor(value))})
    return {
        "id": "latency",
        "title": title,
        "svg": charts.hbars(
            bars,
            value_text=lambda ms: f"{ms:,.0f} ms",
            links=links,
            colours={
                label: charts.PALETTE[0 if i < 3 else 1] for i, (label, _v) in enumerate(bars)
            },
            title=_("Latency percentiles"),
            description=_(
                "Horizontal bars: p50, p90 and p99 of the time from submission "
                "to result, and of the backend call alone, in milliseconds."
            ),
        ),
        "table": {
            "headers": [_("Percentile"), _("Submission to result"), _("Backend call")],
            "rows": [
                [key, _ms(stats["latency_ms"][key]), _ms(stats["backend_ms"][key])]
                for key in PERCENTILES
            ],
            "links": [links.get(f"{_('end to end')} {key}") for key in PERCENTILES],
        },
    }


def _throughput(stats, bucket, link, span):
    counts = {charts.bucket_key(row["bucket"], bucket): row["count"] for row in stats["throughput"]}
    axis = charts.time_axis([row["bucket"] for row in stats["throughput"]], bucket)
    text = _bucket_text(bucket)
    links = {key: link(_bucket_params("finished_at", key, bucket, span)) for key in counts}
    return {
        "id": "throughput",
        "title": _("Throughput (finished requests per %(bucket)s)") % {"bucket": _(bucket)},
        "svg": charts.columns(
            [(key, counts.get(key, 0)) for key in axis],
            x_text=text,
            fill=charts.PALETTE[2],
            links=links,
            title=_("Throughput"),
            description=_("Columns: requests that reached a final status in each time bucket."),
        ),
        "table": {
            "headers": [_("Period"), _("Finished requests")],
            "rows": [[text(key), counts[key]] for key in axis if key in counts],
            "links": [links[key] for key in axis if key in counts],
        },
    }
