"""Admin: the classification history, its detail page, actions, CSV export and dashboard.

Everything is read-only: results and statuses change only through
:mod:`django_textclass.services` (the actions call it). The changelist is built to
stay fast on millions of rows: a capped count (:mod:`.changelist`), filters whose
choices come from index walks (:mod:`.filters`), ``select_related`` for every column
shown and no query per row.
"""

import copy
from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_textclass import catalog, services
from django_textclass.admin import (  # noqa: F401  (pacing registers)
    dashboard,
    export,
    pacing,
    periods,
)
from django_textclass.admin.changelist import (
    CappedCountPaginator,
    FilterOnlyChangeList,
    HistoryChangeList,
)
from django_textclass.admin.columns import RequestColumns
from django_textclass.admin.filters import (
    BackendFilter,
    BackendSlowerThanFilter,
    ErrorCodeFilter,
    ModelFilter,
    ModelKeyFilter,
    OwnerFilter,
    ScoreBinFilter,
    SlowerThanFilter,
    TopLabelFilter,
)
from django_textclass.models import ClassificationRequest
from django_textclass.stats import BUCKETS, compute_stats

#: Days the dashboard shows when no date filter is chosen (every chart reads each row
#: of the window, so a bounded default keeps the first view fast on big tables).
DASHBOARD_DEFAULT_DAYS = 7
#: The lower bound of the dashboard's "all time" link.
ALL_TIME = "1970-01-01 00:00:00+00:00"


def default_window(request):
    """``request``'s query string plus the "Past 7 days" bounds of the date filter."""
    params = request.GET.copy()
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    params["created_at__gte"] = str(today - timedelta(days=DASHBOARD_DEFAULT_DAYS))
    params["created_at__lt"] = str(today + timedelta(days=1))
    return params.urlencode()


@admin.register(ClassificationRequest)
class ClassificationRequestAdmin(RequestColumns, admin.ModelAdmin):
    """The history of classification requests, newest first, with a dashboard and export."""

    list_display = [
        # What a row says first: when, what text, which answer, how it went. At 1,400 pixels,
        # with the admin's two sidebars open, these fit; the rest scroll into view.
        "created_at",
        "short_text",
        "top_result",
        "status_badge",
        "model_column",
        "key_display",
        "duration_display",
        "attempts",
        "owner",
        "source_link",
    ]
    list_display_links = ["created_at"]
    list_filter = [
        "status",
        ModelKeyFilter,
        ModelFilter,
        TopLabelFilter,
        "created_at",
        OwnerFilter,
        BackendFilter,
        ErrorCodeFilter,
        ScoreBinFilter,
        "finished_at",
        SlowerThanFilter,
        BackendSlowerThanFilter,
    ]
    list_select_related = ["owner", "content_type"]
    search_fields = ["text"]
    search_help_text = _("A public id (uuid) finds that request; other words search the text.")
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50
    actions = ["retry_failed", "cancel_pending", "reclassify"]
    change_list_template = "admin/django_textclass/classificationrequest/change_list.html"
    dashboard_template = "admin/django_textclass/dashboard.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "uuid",
                    "status_badge",
                    "model_id",
                    "model_key",
                    "revision",
                    "backend",
                    "owner",
                    "source_link",
                ]
            },
        ),
        (_("Text"), {"fields": ["text"]}),
        (_("Answer"), {"fields": ["top_result", "scores_table", "reused_from"]}),
        (_("Parameters"), {"fields": ["function_to_apply", "top_k", "use_cache"]}),
        (
            _("Timings"),
            {
                "fields": [
                    "created_at",
                    "started_at",
                    "finished_at",
                    "duration_display",
                    "backend_ms",
                    "next_attempt_at",
                    "lease_expires_at",
                ]
            },
        ),
        (
            _("Attempts and errors"),
            {"fields": ["attempts", "error_code", "error_message", "events_table"]},
        ),
    ]
    readonly_fields = [
        "uuid",
        "status_badge",
        "model_id",
        "model_key",
        "revision",
        "backend",
        "owner",
        "source_link",
        "text",
        "top_result",
        "scores_table",
        "reused_from",
        "function_to_apply",
        "top_k",
        "use_cache",
        "created_at",
        "started_at",
        "finished_at",
        "duration_display",
        "backend_ms",
        "next_attempt_at",
        "lease_expires_at",
        "attempts",
        "error_code",
        "error_message",
        "events_table",
    ]

    # --- permissions: read-only, but staff with "change" may run the actions ----------

    def has_add_permission(self, request):
        """Requests are created through ``classify()`` or the API, not by hand."""
        return False

    def has_change_permission(self, request, obj=None):
        """Results and statuses are never edited by hand."""
        return False

    def has_manage_permission(self, request):
        """Whether the user may retry, cancel or reclassify (Django's "change" permission)."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    # --- columns ----------------------------------------------------------------------

    def get_list_display(self, request):
        """The columns; the key column only on a site with a model registry."""
        columns = list(super().get_list_display(request))
        if not catalog.key_names() and "key_display" in columns:
            columns.remove("key_display")
        return columns

    # --- search: a uuid is an exact lookup, anything else searches the text ------------

    def get_search_results(self, request, queryset, search_term):
        """An exact, indexed uuid lookup for a uuid; the text search otherwise."""
        import uuid

        term = search_term.strip()
        try:
            return queryset.filter(uuid=uuid.UUID(term)), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)

    # --- actions ----------------------------------------------------------------------

    @admin.action(
        description=_("Retry the selected failed or cancelled requests"), permissions=["manage"]
    )
    def retry_failed(self, request, queryset):
        """Send failed and cancelled requests again (``services.retry_many``)."""
        count = services.retry_many(queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)d request will be retried.", "%(count)d requests will be retried.", count
            )
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    @admin.action(description=_("Cancel the selected pending requests"), permissions=["manage"])
    def cancel_pending(self, request, queryset):
        """Cancel pending requests (``services.cancel_many``)."""
        count = services.cancel_many(queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)d request was cancelled.", "%(count)d requests were cancelled.", count
            )
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    @admin.action(
        description=_("Classify the selected texts again (bypassing the cache)"),
        permissions=["manage"],
    )
    def reclassify(self, request, queryset):
        """Submit the texts again as new requests with ``use_cache=False``."""
        count = services.reclassify(queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)d new request was submitted.",
                "%(count)d new requests were submitted.",
                count,
            )
            % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    # --- changelist, dashboard and export ---------------------------------------------

    def get_changelist(self, request, **kwargs):
        """The capped-count changelist."""
        return HistoryChangeList

    def get_urls(self):
        """Add ``dashboard/`` and ``export/`` in front of the standard URLs."""
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="{}_{}_dashboard".format(*info)),
            path("export/", view(self.export_view), name="{}_{}_export".format(*info)),
            *super().get_urls(),
        ]

    def filtered_changelist(self, request):
        """A :class:`FilterOnlyChangeList` for ``request``: the list's filters, no page."""
        list_display = self.get_list_display(request)
        return FilterOnlyChangeList(
            request,
            self.model,
            list_display,
            self.get_list_display_links(request, list_display),
            self.get_list_filter(request),
            self.date_hierarchy,
            self.get_search_fields(request),
            self.get_list_select_related(request),
            self.list_per_page,
            self.list_max_show_all,
            self.list_editable,
            self,
            self.get_sortable_by(request),
            self.search_help_text,
        )

    def dashboard_view(self, request):
        """The "Label distributions" page, filtered like the changelist."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if not any(key.startswith(f"{self.date_hierarchy}__") for key in request.GET):
            return HttpResponseRedirect(f"{request.path}?{default_window(request)}")
        bucket = request.GET.get("bucket", "day")
        if bucket not in BUCKETS:
            self.message_user(request, _("Unknown time bucket; showing days."), messages.ERROR)
            bucket = "day"
        try:
            cl = self.filtered_changelist(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        changelist = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )

        def link(params):
            # The dashboard's filters, search and dates, and the bar's own on top.
            return changelist + cl.get_query_string(params, remove=["bucket"])

        span = periods.window(request.GET, self.date_hierarchy)
        before = previous = None
        if span is not None:
            before = periods.previous(span)
            previous = self.previous_period_stats(request, before, bucket)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Label distributions"),
            "subtitle": None,
            "opts": self.opts,
            "cl": cl,
            "buckets": [(name, cl.get_query_string({"bucket": name})) for name in BUCKETS],
            "changelist_query": cl.get_query_string(remove=["bucket"]),
            "all_time_query": cl.get_query_string(
                {f"{self.date_hierarchy}__gte": ALL_TIME}, [f"{self.date_hierarchy}__"]
            ),
            "span": span,
            "previous_span": before,
            "previous_query": None
            if before is None
            else "?" + periods.shifted(request.GET, self.date_hierarchy, before).urlencode(),
            **dashboard.build(cl.queryset, bucket, link=link, span=span, previous=previous),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.dashboard_template, context)

    def previous_period_stats(self, request, span, bucket):
        """``compute_stats`` of the dashboard's filters over the creation window ``span``."""
        shifted = copy.copy(request)
        shifted.GET = periods.shifted(request.GET, self.date_hierarchy, span)
        return compute_stats(self.filtered_changelist(shifted).queryset, bucket=bucket)

    def export_view(self, request):
        """Stream the filtered history as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            cl = self.filtered_changelist(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return export.csv_response(cl.queryset.order_by("-created_at", "-id"))
