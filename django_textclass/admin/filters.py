"""Changelist filters whose choices never scan the requests table.

Django's stock filters list choices with ``SELECT DISTINCT`` over the table (or
every user). These take them from the field's choices, from the settings, or from
an index walk in :mod:`django_textclass.stats`, so they stay instant on large tables.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from django_textclass import stats
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
