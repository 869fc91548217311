"""The dashboard's comparison of its window with the previous period of the same length."""

from django.utils.translation import gettext as _

from django_textclass.stats import PERCENTILES

#: Labels whose shares are compared (the most frequent first).
TOP_LABELS = 8


def percent(share):
    """``"12.5 %"`` (a dash for None)."""
    return "–" if share is None else f"{share * 100:.1f} %"


def milliseconds(value):
    """``"1,234.5 ms"`` (a dash for None)."""
    return "–" if value is None else f"{value:,.1f} ms"


def compare(current, previous):
    """This period against the previous one of the same length, as table rows.

    Returns:
        ``{"headers": [...], "rows": [[measure, this period, previous period, change]]}``:
        requests, each status that occurred, the failure rate, the latency percentiles, and
        the share of each top label of either period (changes in percentage points).
    """
    rows = []
    now_counts, then_counts = current["status_counts"], previous["status_counts"]
    rows.append(
        [
            _("Requests"),
            f"{sum(now_counts.values()):,}",
            f"{sum(then_counts.values()):,}",
            _count_change(sum(now_counts.values()), sum(then_counts.values())),
        ]
    )
    for status in now_counts:
        if now_counts[status] or then_counts.get(status):
            rows.append(
                [
                    status,
                    f"{now_counts[status]:,}",
                    f"{then_counts.get(status, 0):,}",
                    _count_change(now_counts[status], then_counts.get(status, 0)),
                ]
            )
    rows.append(
        [
            _("failure rate"),
            percent(current["failure_rate"]),
            percent(previous["failure_rate"]),
            _points(current["failure_rate"], previous["failure_rate"]),
        ]
    )
    for key in PERCENTILES:
        now_ms, then_ms = current["latency_ms"][key], previous["latency_ms"][key]
        rows.append(
            [
                f"{_('submission to result')} {key}",
                milliseconds(now_ms),
                milliseconds(then_ms),
                _ms_change(now_ms, then_ms),
            ]
        )
    now_shares = {row["label"]: row["share"] for row in current["label_distribution"]}
    then_shares = {row["label"]: row["share"] for row in previous["label_distribution"]}
    labels = sorted(
        now_shares.keys() | then_shares.keys(),
        key=lambda label: (-now_shares.get(label, 0), -then_shares.get(label, 0), label),
    )
    for label in labels[:TOP_LABELS]:
        rows.append(
            [
                _("share of %(label)s") % {"label": label},
                percent(now_shares.get(label, 0.0)),
                percent(then_shares.get(label, 0.0)),
                _points(now_shares.get(label, 0.0), then_shares.get(label, 0.0)),
            ]
        )
    return {
        "headers": [_("Measure"), _("This period"), _("Previous period"), _("Change")],
        "rows": rows,
    }


def _count_change(now, then):
    difference = now - then
    if not then:
        return f"{difference:+,}"
    return f"{difference:+,} ({difference / then * 100:+.1f} %)"


def _points(now, then):
    if now is None or then is None:
        return "–"
    return _("%(points)s pp") % {"points": f"{(now - then) * 100:+.1f}"}


def _ms_change(now, then):
    if now is None or then is None:
        return "–"
    difference = now - then
    relative = f" ({difference / then * 100:+.1f} %)" if then else ""
    return f"{difference:+,.1f} ms{relative}"
