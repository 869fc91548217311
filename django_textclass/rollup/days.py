"""Day maths of the roll-up: which UTC days a write touches. Imports none of our models.

The models' write overrides (``ClassificationRequestQuerySet``) call these to know which
rolled days to mark changed, so this module sits below the models.
"""

from datetime import datetime, time
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db.models.functions import TruncDate
from django.utils import timezone

UTC = dt_timezone.utc  # datetime.UTC needs Python 3.11

#: The request fields a day's roll-up is summed from: a write that sets none of them
#: (a lease renewal, say) changes no rolled day.
ROLLED_FIELDS = frozenset(
    {"created_at", "finished_at", "model_id", "status", "top_label", "top_score", "backend_ms"}
)


def enabled():
    """Whether the roll-up is in use: it needs ``USE_TZ = True`` (check ``textclass.W004``).

    With ``USE_TZ = False`` datetimes are naive and a UTC day has no meaning here; nothing
    is marked or rolled, and every statistic is read from the rows.
    """
    return settings.USE_TZ


def day_start(day):
    """Midnight UTC that starts ``day``."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def utc_today(now=None):
    """The UTC date of ``now`` (default: the current time)."""
    return (now or timezone.now()).astimezone(UTC).date()


def changed_days(queryset, now=None):
    """UTC days before today of the rows in ``queryset``: what a write to them must mark."""
    if not enabled():
        return set()
    return set(
        queryset.order_by()
        .filter(created_at__lt=day_start(utc_today(now)))
        .annotate(_day=TruncDate("created_at", tzinfo=UTC))
        .values_list("_day", flat=True)
        .distinct()
    )


def days_of(moments, now=None):
    """UTC days before today among ``moments`` (what is not a datetime is skipped)."""
    if not enabled():
        return set()
    today = utc_today(now)
    days = {moment.astimezone(UTC).date() for moment in moments if isinstance(moment, datetime)}
    return {day for day in days if day < today}
