"""Server-side SVG charts for the admin dashboard: no JavaScript, no CDN, work offline.

Each function takes plain numbers (from :mod:`django_textclass.stats`) and returns a
``SafeString`` holding one ``<svg role="img">`` with a ``<title>`` and ``<desc>``; the
template puts a table of the same numbers under it, for screen readers and for
copying. Every piece of text that comes from data (labels, model names) is escaped
here, by ``format_html``, before it reaches the markup.
"""

from datetime import datetime, timedelta, timezone

from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

#: Colour-blind-safe categorical palette (Okabe & Ito), cycled for labels.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
)
#: Fixed colours of statuses, shared with the changelist's badges.
STATUS_COLOURS = {
    "pending": "#6c757d",
    "running": "#0072B2",
    "succeeded": "#009E73",
    "failed": "#D55E00",
    "cancelled": "#999999",
}
WIDTH = 720
FONT = 'font-family="system-ui, sans-serif" font-size="12"'
_counter = iter(range(1, 1 << 62))


def colour(index):
    """The palette colour of the ``index``-th label."""
    return PALETTE[index % len(PALETTE)]


def _frame(body, *, title, description, height):
    """Wrap chart ``body`` (already safe) in an accessible, responsive ``<svg>``."""
    uid = f"textclass-chart-{next(_counter)}"
    return _svg(
        '<svg class="textclass-chart" role="img" aria-labelledby="{0}-t {0}-d" '
        'viewBox="0 0 {1} {2}" width="100%" preserveAspectRatio="xMinYMin meet" '
        'xmlns="http://www.w3.org/2000/svg" ' + FONT + ">"
        '<title id="{0}-t">{3}</title><desc id="{0}-d">{4}</desc>{5}</svg>',
        uid,
        WIDTH,
        height,
        title,
        description,
        body,
    )


def _empty(title):
    return _frame(
        _svg(
            '<text x="{}" y="40" text-anchor="middle" fill="#666">{}</text>',
            WIDTH // 2,
            "No data for these filters.",
        ),
        title=title,
        description="No data.",
        height=70,
    )


def hbars(rows, *, title, description, colours=None, value_text=str, links=None):
    """Horizontal bars, one per ``(label, value)``, longest first as given.

    Args:
        rows: ``[(label, value), ...]`` with non-negative values.
        title: the chart's accessible name.
        description: one sentence saying what the bars are.
        colours: optional ``{label: colour}``; the palette otherwise.
        value_text: formats a value for the text at the end of its bar.
        links: optional ``{label: url}``: the bar (with its texts) links there.
    """
    if not rows or not any(value for _, value in rows):
        return _empty(title)
    label_w, row_h, right = 190, 26, 90
    top = max(value for _, value in rows) or 1
    span = WIDTH - label_w - right
    bars = []
    for i, (label, value) in enumerate(rows):
        y = 8 + i * row_h
        width = max(1.0 if value else 0.0, span * value / top)
        fill = (colours or {}).get(label, colour(i))
        bars.append(
            _linked(
                (links or {}).get(label),
                _svg(
                    '<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>'
                    '<rect x="{}" y="{}" width="{:.1f}" height="{}" fill="{}" rx="2"></rect>'
                    '<text x="{:.1f}" y="{}" dominant-baseline="middle">{}</text>',
                    label_w - 8,
                    y + row_h / 2 - 2,
                    _clip(label, 28),
                    label_w,
                    y,
                    width,
                    row_h - 8,
                    fill,
                    label_w + width + 6,
                    y + row_h / 2 - 2,
                    value_text(value),
                ),
            )
        )
    return _frame(_join(bars), title=title, description=description, height=16 + len(rows) * row_h)


def columns(rows, *, title, description, x_text=str, fill=PALETTE[0], links=None):
    """Vertical columns, one per ``(x, value)`` in the order given (a histogram, a series).

    Args:
        rows: ``[(x, value), ...]``; ``x_text(x)`` labels the axis (a few are shown).
        title: the chart's accessible name.
        description: one sentence saying what the columns are.
        x_text: formats an x value for the axis.
        fill: the columns' colour.
        links: optional ``{x: url}``: the column links there.
    """
    return stacked_columns(
        [(x, {"": value}) for x, value in rows],
        [""],
        title=title,
        description=description,
        x_text=x_text,
        colours={"": fill},
        links={(x, ""): url for x, url in (links or {}).items()},
    )


def stacked_columns(
    rows,
    series,
    *,
    title,
    description,
    x_text=str,
    colours=None,
    links=None,
    peak=None,
    y_text=None,
    value_text=str,
):
    """Columns stacked by series: ``rows`` is ``[(x, {series: value})]`` in x order.

    Args:
        rows: the columns, in order; a missing series counts as 0.
        series: series names, bottom first; a legend lists them when there are several.
        title: the chart's accessible name.
        description: one sentence saying what the columns are.
        x_text: formats an x value for the axis (about eight are labelled).
        colours: optional ``{series: colour}``; the palette otherwise.
        links: optional ``{(x, series): url}``: that piece of the column links there.
        peak: the top of the y axis (default: a round number above the tallest column).
        y_text: formats the y axis' values (default: short numbers, 1.5k).
        value_text: formats a value for a piece's tooltip.
    """
    totals = [sum(values.values()) for _, values in rows]
    if not rows or not any(totals):
        return _empty(title)
    colours = colours or {name: colour(i) for i, name in enumerate(series)}
    legend_h = 22 if len(series) > 1 else 0
    left, bottom, top_pad, height = 56, 28, 10 + legend_h, 260 + legend_h
    plot_w, plot_h = WIDTH - left - 12, height - bottom - top_pad
    peak = peak or _nice_ceiling(max(totals))
    step = plot_w / len(rows)
    parts = [_y_axis(left, top_pad, plot_w, plot_h, peak, y_text or _short_number)]
    for i, (x, values) in enumerate(rows):
        y = top_pad + plot_h
        x_label = x_text(x)  # once per column: a date format is dear, times 90 days x 9 series
        for name in series:
            value = values.get(name, 0)
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                _linked(
                    (links or {}).get((x, name)),
                    _svg(
                        '<rect x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" fill="{}">'
                        "<title>{}: {} {}</title></rect>",
                        left + i * step + step * 0.1,
                        y,
                        max(step * 0.8, 0.5),
                        h,
                        colours[name],
                        x_label,
                        name,
                        value_text(value),
                    ),
                )
            )
    label_every = max(1, round(len(rows) / 8))
    for i in range(0, len(rows), label_every):
        parts.append(
            _svg(
                '<text x="{:.1f}" y="{}" text-anchor="middle" fill="#444">{}</text>',
                left + (i + 0.5) * step,
                height - 8,
                x_text(rows[i][0]),
            )
        )
    if legend_h:
        parts.append(_legend(series, colours, left))
    return _frame(_join(parts), title=title, description=description, height=height)


def _y_axis(left, top, width, height, peak, y_text):
    lines = []
    for k in range(5):
        value = peak * k / 4
        y = top + height - height * k / 4
        lines.append(
            _svg(
                '<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="#ddd"></line>'
                '<text x="{}" y="{:.1f}" text-anchor="end" dominant-baseline="middle" '
                'fill="#444">{}</text>',
                left,
                left + width,
                y,
                y,
                left - 6,
                y,
                y_text(value),
            )
        )
    return _join(lines)


def _linked(url, part):
    """``part`` (safe markup) inside an SVG link to ``url``; ``part`` alone without one."""
    if not url:
        return part
    return _svg('<a class="textclass-link" href="{}">{}</a>', url, part)


def _legend(series, colours, left):
    items, x = [], left
    for name in series:
        items.append(
            _svg(
                '<rect x="{}" y="4" width="12" height="12" fill="{}"></rect>'
                '<text x="{}" y="14">{}</text>',
                x,
                colours[name],
                x + 16,
                _clip(name, 18),
            )
        )
        x += 24 + 7 * min(len(name), 18)
    return _join(items)


def bucket_key(iso, bucket):
    """A comparable key for a bucket start: the local date for days, the instant for hours."""
    moment = datetime.fromisoformat(iso)
    return moment.date() if bucket == "day" else moment.astimezone(timezone.utc)


def time_axis(buckets, bucket):
    """Every bucket key from the first to the last of ``buckets`` (ISO strings), gaps included.

    A time series drawn without its empty buckets would hide quiet periods. Keys are
    dates for days (so a 23- or 25-hour daylight-saving day is still one bucket) and
    UTC instants for hours.
    """
    if not buckets:
        return []
    keys = [bucket_key(iso, bucket) for iso in buckets]
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    out, current, last = [], min(keys), max(keys)
    while current <= last:
        out.append(current)
        current += step
    return out


def _nice_ceiling(value):
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= ``value``."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= value:
            return factor * magnitude
    return 10 * magnitude


def _short_number(value):
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _clip(text, length):
    text = str(text)
    return text if len(text) <= length else text[: length - 1] + "…"


def _svg(template, *args):
    """``template.format(*args)`` with every non-number argument HTML-escaped.

    Like ``format_html``, but numbers keep their format specs (``{:.1f}``).
    """
    values = [arg if isinstance(arg, (int, float)) else conditional_escape(arg) for arg in args]
    return mark_safe(template.format(*values))  # noqa: S308 - every argument is escaped


def _join(parts):
    return mark_safe("".join(parts))  # noqa: S308 - parts are built by _svg
