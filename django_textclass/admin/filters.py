"""Changelist filters whose choices never scan the requests table.

Django's stock filters list choices with ``SELECT DISTINCT`` over the table (or
every user). These take them from the field's choices, from the settings, or from
an index walk in :mod:`django_textclass.stats`, so they stay instant on large tables.
"""

from datetime import timedelta

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from django_textclass import catalog, rollup, stats
from django_textclass.conf import app_settings

#: Most choices a filter lists; a longer list is not usable in a sidebar anyway.
CHOICES_LIMIT = 100


class ModelFilter(admin.SimpleListFilter):
    """Requests of one classifier (Hub model id)."""

    title = _("model")
    parameter_name = "model_id"

    def lookups(self, request, model_admin):
        """Model ids that have requests, from an index walk."""
        return [(model, model) for model in stats.known_models(CHOICES_LIMIT)]

    def queryset(self, request, queryset):
        """Keep the chosen model's requests."""
        return queryset.filter(model_id=self.value()) if self.value() else queryset


class TopLabelFilter(admin.SimpleListFilter):
    """Requests whose best label is the chosen one (of the chosen model, when there is one)."""

    title = _("top label")
    parameter_name = "top_label"

    def lookups(self, request, model_admin):
        """Labels that occur, from an index walk; narrowed to the model filter's choice."""
        model_id = request.GET.get(ModelFilter.parameter_name) or None
        return [(label, label) for label in stats.known_labels(model_id, CHOICES_LIMIT)]

    def queryset(self, request, queryset):
        """Keep the requests whose top label is the chosen one."""
        return queryset.filter(top_label=self.value()) if self.value() else queryset


class OwnerFilter(admin.SimpleListFilter):
    """Requests of one user; only users who own requests are listed."""

    title = _("owner")
    parameter_name = "owner"

    def lookups(self, request, model_admin):
        """Owners found by an index walk, then named in one query."""
        ids = stats.known_owner_ids(CHOICES_LIMIT)
        users = get_user_model()._default_manager.filter(pk__in=ids).order_by("pk")
        return [(str(user.pk), str(user)) for user in users]

    def queryset(self, request, queryset):
        """Keep the chosen owner's requests."""
        if not self.value():
            return queryset
        try:
            return queryset.filter(owner_id=int(self.value()))
        except (TypeError, ValueError):
            # A hand-edited URL: show nothing rather than every row.
            return queryset.none()


class BackendFilter(admin.SimpleListFilter):
    """Requests served by one backend alias; the choices are the configured aliases."""

    title = _("backend")
    parameter_name = "backend"

    def lookups(self, request, model_admin):
        """The ``TEXTCLASS["BACKENDS"]`` aliases (no query)."""
        return [(alias, alias) for alias in sorted(app_settings.BACKENDS)]

    def queryset(self, request, queryset):
        """Keep the chosen backend's requests."""
        return queryset.filter(backend=self.value()) if self.value() else queryset


class ModelKeyFilter(admin.SimpleListFilter):
    """Requests submitted with one key of the model registry (``TEXTCLASS["MODELS"]``)."""

    title = _("model key")
    parameter_name = "model_key"

    def lookups(self, request, model_admin):
        """The configured keys (no query), and the chosen one if it is no longer configured.

        A site without a registry and with no key chosen gets no filter at all.
        """
        keys = catalog.key_names()
        chosen = self.value()
        if chosen and chosen not in keys:
            keys = [*keys, chosen]
        return [(key, key) for key in keys]

    def queryset(self, request, queryset):
        """Keep the chosen key's requests (whatever model or revision it had then)."""
        return queryset.filter(model_key=self.value()) if self.value() else queryset


class ScoreBinFilter(admin.SimpleListFilter):
    """Requests whose top score falls in one of the dashboard histogram's ten bins."""

    title = _("top score")
    parameter_name = "top_score_bin"

    def lookups(self, request, model_admin):
        """The bins, as the histogram draws them (no query)."""
        edges = rollup.score_edges()
        return [(str(i), f"{edges[i]:.1f} – {edges[i + 1]:.1f}") for i in range(len(edges) - 1)]

    def queryset(self, request, queryset):
        """Keep the chosen bin: ``lower <= top_score < upper`` (1.0 in the last), as stats do."""
        if self.value() is None:
            return queryset
        edges = rollup.score_edges()
        try:
            index = int(self.value())
        except (TypeError, ValueError):
            return queryset.none()
        if not 0 <= index < len(edges) - 1:
            return queryset.none()
        # The same edges as rollup.score_bin(): below the first upper edge is bin 0, and
        # everything from the last lower edge up is the last bin.
        if index > 0:
            queryset = queryset.filter(top_score__gte=edges[index])
        if index < len(edges) - 2:
            queryset = queryset.filter(top_score__lt=edges[index + 1])
        return queryset.filter(top_score__isnull=False)


#: The error codes the pipeline stores (docs/changelog.md), offered by the error code filter.
KNOWN_ERROR_CODES = (
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "timeout",
    "connection_error",
    "request_error",
    "backend_exception",
    "retries_exhausted",
    "deadline_exceeded",
    "lease_expired",
    "invalid_response",
    "configuration",
    "permanent",
    "chunk_failed",
    "invalid_model_id",
    "retired_host",
)


class ErrorCodeFilter(admin.SimpleListFilter):
    """Requests whose last attempt failed with one error code."""

    title = _("error code")
    parameter_name = "error_code"

    def lookups(self, request, model_admin):
        """The codes the pipeline stores, and the chosen one (no query: no index to walk)."""
        codes = list(KNOWN_ERROR_CODES)
        chosen = request.GET.get(self.parameter_name)
        if chosen is not None and chosen not in codes:
            codes.append(chosen)
        return [(code, code or _("(none)")) for code in codes]

    def queryset(self, request, queryset):
        """Keep the chosen code's requests."""
        return queryset if self.value() is None else queryset.filter(error_code=self.value())


class _SlowerThanFilter(admin.SimpleListFilter):
    """Requests at least N milliseconds slow; any whole N works, a few are offered."""

    CHOICES_MS = (100, 1000, 10_000, 60_000)

    def lookups(self, request, model_admin):
        """A few round thresholds, and the chosen one (a dashboard link's percentile)."""
        values = list(self.CHOICES_MS)
        chosen = self._milliseconds(request.GET.get(self.parameter_name))
        if chosen is not None and chosen not in values:
            values = sorted([*values, chosen])
        return [(str(ms), f"≥ {ms / 1000:g} s") for ms in values]

    @staticmethod
    def _milliseconds(value):
        try:
            number = int(value)
        except (TypeError, ValueError):
            return None
        return number if 0 <= number <= 10**12 else None

    def queryset(self, request, queryset):
        """Keep the requests at least this slow; a malformed value keeps none."""
        if self.value() is None:
            return queryset
        ms = self._milliseconds(self.value())
        if ms is None:
            return queryset.none()
        return self.slower(queryset, ms)


class SlowerThanFilter(_SlowerThanFilter):
    """Requests whose time from submission to result was at least N ms."""

    title = _("submission to result")
    parameter_name = "slower_than_ms"

    def slower(self, queryset, ms):
        """``finished_at - created_at >= ms``."""
        return queryset.alias(_textclass_elapsed=rollup.elapsed()).filter(
            _textclass_elapsed__gte=timedelta(milliseconds=ms)
        )


class BackendSlowerThanFilter(_SlowerThanFilter):
    """Requests whose backend call took at least N ms."""

    title = _("backend call")
    parameter_name = "backend_slower_than_ms"

    def slower(self, queryset, ms):
        """``backend_ms >= ms``."""
        return queryset.filter(backend_ms__gte=ms)
