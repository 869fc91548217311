"""A changelist that never counts the whole table.

Django's changelist runs ``COUNT(*)`` over the filtered rows for its paginator and
``SELECT DISTINCT`` date queries for its date hierarchy; on a million rows either
takes longer than the page itself. Here the count stops at ``cap`` rows (the page
says "more than ...") and the date links come from the first and last date of the
filtered rows (one ``MIN``/``MAX`` query, which an index answers). A result that fits
on one page is read once and neither counted nor asked for its dates: that is what
keeps a text search, which scans the table, to one scan.
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
    """A paginator that counts at most ``cap + 1`` rows, and reads a short list once.

    ``count`` is the exact number up to ``cap``; past it, ``count`` is ``cap`` and
    ``capped`` is True (later pages are reached through filters, not page links).

    It first reads the first page plus one row (:attr:`head`). When that is everything,
    it is the count too, and no ``COUNT`` runs: a text search that matches a few rows
    scans the table once instead of twice. Page 1 is always served from :attr:`head`.
    """

    cap = 10_000
    capped = False

    @cached_property
    def head(self):
        """The first ``per_page + 1`` rows (one query)."""
        return list(self.object_list[: self.per_page + 1])

    @cached_property
    def count(self):
        """The number of rows, at most :attr:`cap`: from :attr:`head`, or one bounded ``COUNT``."""
        if len(self.head) <= self.per_page:
            counted = len(self.head)
        else:
            counted = self.object_list[: self.cap + 1].count()
        self.capped = counted > self.cap
        return min(counted, self.cap)

    @property
    def is_short(self):
        """Whether :attr:`head` holds every row (one page, nothing more to read)."""
        return len(self.head) <= self.per_page

    def page(self, number):
        """Page ``number``; page 1 comes from :attr:`head` without another query."""
        number = self.validate_number(number)
        if number == 1:
            return self._get_page(self.head[: self.per_page], number, self)
        return super().page(number)


class HistoryChangeList(ChangeList):
    """The requests changelist: capped count, cheap date hierarchy, dashboard params ignored."""

    def get_filters_params(self, params=None):
        """The filter parameters, without the dashboard's own (``bucket``)."""
        lookup_params = super().get_filters_params(params)
        for name in DASHBOARD_PARAMS:
            lookup_params.pop(name, None)
        return lookup_params

    def get_results(self, request):
        """Fetch the page; note whether the count was capped.

        Django lists a result that fits on one page by reading the queryset again; the
        paginator has already read it all (:attr:`CappedCountPaginator.head`), so that
        list is used instead.
        """
        super().get_results(request)
        self.count_capped = getattr(self.paginator, "capped", False)
        if getattr(self.paginator, "is_short", False):
            self.result_list = self.paginator.head

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


def _bounds(cl, field):
    """``{"first", "last"}`` values of ``field`` over the filtered rows.

    From the rows already read when they all fit on the page (no query), else one
    ``MIN``/``MAX`` query, which an index answers.
    """
    paginator = getattr(cl, "paginator", None)
    if getattr(paginator, "is_short", False):
        values = [getattr(row, field) for row in paginator.head]
        return {"first": min(values, default=None), "last": max(values, default=None)}
    return cl.queryset.order_by().aggregate(first=Min(field), last=Max(field))


def date_links(cl):
    """Year, month or day links for ``cl.date_hierarchy`` from the first and last date.

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
            "back": {
                "link": link({f"{field}__year": year, f"{field}__month": month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    bounds = _bounds(cl, field)
    if bounds["first"] is None:
        return {"show": False}
    first, last = (timezone.localtime(bounds[k]) for k in ("first", "last"))
    if not year and first.year == last.year:
        year = first.year
        if first.month == last.month:
            month = first.month
    if year and month:
        year, month = int(year), int(month)
        days = range(
            first.day if (first.year, first.month) == (year, month) else 1,
            (
                last.day
                if (last.year, last.month) == (year, month)
                else calendar.monthrange(year, month)[1]
            )
            + 1,
        )
        return {
            "show": True,
            "back": {"link": link({f"{field}__year": year}), "title": str(year)},
            "choices": [
                {
                    "link": link(
                        {f"{field}__year": year, f"{field}__month": month, f"{field}__day": d}
                    ),
                    "title": capfirst(
                        formats.date_format(date(year, month, d), "MONTH_DAY_FORMAT")
                    ),
                }
                for d in days
            ],
        }
    if year:
        year = int(year)
        months = range(
            first.month if first.year == year else 1, (last.month if last.year == year else 12) + 1
        )
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {
                    "link": link({f"{field}__year": year, f"{field}__month": m}),
                    "title": capfirst(formats.date_format(date(year, m, 1), "YEAR_MONTH_FORMAT")),
                }
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
