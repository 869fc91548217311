"""A changelist that never counts the whole table.

Django's changelist runs ``COUNT(*)`` over the filtered rows for its paginator and
``SELECT DISTINCT`` date queries for its date hierarchy; on a million rows either
takes longer than the page itself. Here the count stops at :attr:`COUNT_CAP` rows
(the page says "more than ...") and the date links come from the first and last
date of the filtered rows (one ``MIN``/``MAX`` query, which an index answers).
"""

import calendar
from datetime import date

from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import Max, Min
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext as _

#: Query parameters the dashboard adds to the changelist's own.
DASHBOARD_PARAMS = ("bucket",)


class CappedCountPaginator(Paginator):
    """A paginator that counts at most ``cap + 1`` rows.

    ``count`` is the exact number up to ``cap``; past it, ``count`` is ``cap`` and
    ``capped`` is True (later pages are reached through filters, not page links).
    """

    cap = 10_000

    @cached_property
    def count(self):
        """The number of rows, at most :attr:`cap` (one bounded ``COUNT`` subquery)."""
        counted = self.object_list[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)

    capped = False


class HistoryChangeList(ChangeList):
    """The requests changelist: capped count, cheap date hierarchy, dashboard params ignored."""

    def get_filters_params(self, params=None):
        """The filter parameters, without the dashboard's own (``bucket``)."""
        lookup_params = super().get_filters_params(params)
        for name in DASHBOARD_PARAMS:
            lookup_params.pop(name, None)
        return lookup_params

    def get_results(self, request):
        """Fetch the page; note whether the count was capped."""
        super().get_results(request)
        self.count_capped = getattr(self.paginator, "capped", False)

    @cached_property
    def textclass_dates(self):
        """Context for ``admin/date_hierarchy.html`` (``show``, ``back``, ``choices``)."""
        return date_links(self)


class FilterOnlyChangeList(HistoryChangeList):
    """Parses and applies the changelist's filters, search and dates; fetches no page.

    The dashboard and the CSV export use it so that they filter exactly like the list.
    """

    def get_results(self, request):
        """Skip the count and the page: only ``self.queryset`` is wanted."""
        self.result_count = self.full_result_count = None
        self.result_list = []
        self.can_show_all = self.multi_page = self.show_admin_actions = False
        self.count_capped = False
        self.paginator = None


def date_links(cl):
    """Year, month or day links for ``cl.date_hierarchy`` from one MIN/MAX query.

    Returns the same context Django's ``date_hierarchy`` tag gives its template, but
    lists every period between the first and the last matching row instead of
    asking the database for each distinct period.
    """
    field = cl.date_hierarchy
    year = cl.params.get(f"{field}__year")
    month = cl.params.get(f"{field}__month")
    day = cl.params.get(f"{field}__day")

    def link(filters):
        return cl.get_query_string(filters, [f"{field}__"])

    if year and month and day:
        chosen = date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {"link": link({f"{field}__year": year, f"{field}__month": month}),
                     "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT"))},
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    bounds = cl.queryset.order_by().aggregate(first=Min(field), last=Max(field))
    if bounds["first"] is None:
        return {"show": False}
    first, last = (timezone.localtime(bounds[k]) for k in ("first", "last"))
    if not year and first.year == last.year:
        year = first.year
        if first.month == last.month:
            month = first.month
    if year and month:
        year, month = int(year), int(month)
        days = range(first.day if (first.year, first.month) == (year, month) else 1,
                     (last.day if (last.year, last.month) == (year, month)
                      else calendar.monthrange(year, month)[1]) + 1)
        return {
            "show": True,
            "back": {"link": link({f"{field}__year": year}), "title": str(year)},
            "choices": [
                {"link": link({f"{field}__year": year, f"{field}__month": month,
                               f"{field}__day": d}),
                 "title": capfirst(formats.date_format(date(year, month, d), "MONTH_DAY_FORMAT"))}
                for d in days
            ],
        }
    if year:
        year = int(year)
        months = range(first.month if first.year == year else 1,
                       (last.month if last.year == year else 12) + 1)
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {"link": link({f"{field}__year": year, f"{field}__month": m}),
                 "title": capfirst(formats.date_format(date(year, m, 1), "YEAR_MONTH_FORMAT"))}
                for m in months
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({f"{field}__year": y}), "title": str(y)}
            for y in range(first.year, last.year + 1)
        ],
    }
