"""The dashboard's window of creation times, and the one before it of the same length.

The window comes from the changelist's own date parameters: the created filter's
``created_at__gte`` / ``__lt`` and the date hierarchy's ``__year`` / ``__month`` / ``__day``
(both may be given; the window is where they overlap). A window without a start, or starting
at the "all time" bound, has no previous period.
"""

from datetime import date, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

#: Windows starting before this have no previous period (the dashboard's "all time").
EARLIEST = datetime(1970, 1, 2, tzinfo=timezone.get_fixed_timezone(0))
HIERARCHY = ("year", "month", "day")


def _moment(value):
    """An aware datetime from a date filter value (a date-time, or a date at local midnight)."""
    if not value:
        return None
    try:
        found = parse_datetime(value)
        if found is None and (day := parse_date(value)) is not None:
            found = datetime.combine(day, time())
    except ValueError:
        return None
    if found is not None and timezone.is_naive(found):
        found = timezone.make_aware(found)
    return found


def local_midnight(day):
    """The aware start of local ``day``."""
    return timezone.make_aware(datetime.combine(day, time()))


def _hierarchy(params, field):
    """``(start, end)`` of the date hierarchy's period, or None."""
    try:
        year, month, day = (
            int(params[f"{field}__{part}"]) if params.get(f"{field}__{part}") else None
            for part in HIERARCHY
        )
        if year is None:
            return None
        if month is None:
            return local_midnight(date(year, 1, 1)), local_midnight(date(year + 1, 1, 1))
        if day is None:
            following = date(year + month // 12, month % 12 + 1, 1)
            return local_midnight(date(year, month, 1)), local_midnight(following)
        start = date(year, month, day)
        return local_midnight(start), local_midnight(start + timedelta(days=1))
    except (ValueError, OverflowError):
        return None


def window(params, field, now=None):
    """``(start, end)`` of the creation times ``params`` choose, or None (no start, all time).

    ``end`` is now when only a start is given.
    """
    starts, ends = [], []
    lower, upper = _moment(params.get(f"{field}__gte")), _moment(params.get(f"{field}__lt"))
    if lower is not None:
        starts.append(lower)
    if upper is not None:
        ends.append(upper)
    period = _hierarchy(params, field)
    if period is not None:
        starts.append(period[0])
        ends.append(period[1])
    if not starts:
        return None
    start, end = max(starts), min(ends) if ends else (now or timezone.now())
    if start < EARLIEST or end <= start:
        return None
    return start, end


def previous(span):
    """The window of the same length that ends where ``span`` starts."""
    start, end = span
    return start - (end - start), start


def shifted(query, field, span):
    """A copy of the ``QueryDict`` ``query`` whose creation window is ``span``."""
    moved = query.copy()
    for part in HIERARCHY:
        moved.pop(f"{field}__{part}", None)
    moved[f"{field}__gte"] = str(span[0])
    moved[f"{field}__lt"] = str(span[1])
    return moved


def clip(bounds, span):
    """``bounds`` (a bucket's start and end) narrowed to ``span`` when there is one."""
    if span is None:
        return bounds
    return max(bounds[0], span[0]), min(bounds[1], span[1])
