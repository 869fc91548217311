"""Query-string filters of the request history (``GET /classifications/``), by django-filter.

:class:`HistoryFilterSet` declares them; the browsable API shows them as a form and the
schema lists them as query parameters. Each value is checked by the same DRF field as the
rest of the API (:class:`APIValueField`), so a bad one answers 400 naming the parameter,
with the API's own reason. Every filter is an indexed column.
"""

import django_filters
from django import forms
from django.contrib.contenttypes.models import ContentType
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from django_textclass.api.fields import BoundedDateTimeField
from django_textclass.models import ClassificationRequest, Status


class StatusListField(serializers.CharField):
    """``"a,b"`` -> ``["a", "b"]``, each a known status."""

    def run_validation(self, data=serializers.empty):
        """A string by CharField's rules (no NUL, not blank), then split on commas."""
        value = super().run_validation(data)
        statuses = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [part for part in statuses if part not in Status.values]
        if unknown or not statuses:
            raise serializers.ValidationError(
                f"Unknown status {', '.join(unknown) or value!r}; use {', '.join(Status.values)}."
            )
        return statuses


class SourceTypeField(serializers.CharField):
    """``app_label.model`` -> its ContentType."""

    def run_validation(self, data=serializers.empty):
        """A string by CharField's rules (no NUL, not blank), then its content type."""
        app_label, _, model = super().run_validation(data).lower().partition(".")
        try:
            return ContentType.objects.get_by_natural_key(app_label, model)
        except ContentType.DoesNotExist:
            raise serializers.ValidationError(
                "Unknown source type; use app_label.model, e.g. blog.comment."
            ) from None


class APIValueField(forms.Field):
    """A form field that validates with one of the API's serializer fields.

    django-filter validates query values with a Django form; this field hands each value
    to a DRF field instead, so the rules and the messages are the API's. An empty value
    is absent, as DRF treats an empty query parameter.
    """

    def __init__(self, *, api_field, **kwargs):
        self.api_field = api_field
        super().__init__(**kwargs)

    def to_python(self, value):
        """The DRF field's value, or a form error with its messages."""
        if value in self.empty_values:
            return None
        try:
            return self.api_field.run_validation(value)
        except serializers.ValidationError as exc:
            details = exc.detail if isinstance(exc.detail, list) else [exc.detail]
            # As parameters, not in the message itself: django-filter formats the message
            # with them, and a '%' the client sent must stay a '%'.
            raise forms.ValidationError(
                [
                    forms.ValidationError("%(reason)s", params={"reason": str(detail)})
                    for detail in details
                ]
            ) from None


class APIValueFilter(django_filters.Filter):
    """A filter whose form field is an :class:`APIValueField`."""

    field_class = APIValueField


def _filter(api_field, field_name, lookup_expr="exact", widget=forms.TextInput):
    """A filter on ``field_name`` whose value ``api_field`` checks (and the schema shows)."""
    api_field.help_text = str(api_field.help_text or "")
    value_filter = APIValueFilter(
        field_name=field_name,
        lookup_expr=lookup_expr,
        api_field=api_field,
        help_text=api_field.help_text,
        widget=widget,
    )
    return extend_schema_field(api_field)(value_filter)


class HistoryForm(forms.Form):
    """The filters' form: the checks that need two parameters."""

    def clean(self):
        """A non-empty range; ``source_id`` only with ``source_type``.

        Only once every value is valid, as a serializer's ``validate`` runs.
        """
        data = super().clean()
        if self._errors:
            return data
        after, before = data.get("created_after"), data.get("created_before")
        if after and before and after >= before:
            self.add_error("created_before", "Must be later than created_after.")
        if data.get("source_id") is not None and data.get("source_type") is None:
            self.add_error("source_type", "Required with source_id.")
        return data


class HistoryFilterSet(django_filters.FilterSet):
    """The history's filters; every one is optional and narrows the list further."""

    status = _filter(
        StatusListField(
            help_text="One status or several, comma-separated: pending,running,succeeded,"
            "failed,cancelled."
        ),
        "status",
        "in",
    )
    model = _filter(serializers.CharField(help_text="Hub repository id, exact."), "model_id")
    key = _filter(
        serializers.CharField(
            help_text="Model key of TEXTCLASS['MODELS'] the texts were submitted with, exact."
        ),
        "model_key",
    )
    label = _filter(
        serializers.CharField(help_text="Top label, exact (e.g. POSITIVE)."), "top_label"
    )
    created_after = _filter(
        BoundedDateTimeField(help_text="ISO 8601; requests created at or after this time."),
        "created_at",
        "gte",
        forms.DateTimeInput,
    )
    created_before = _filter(
        BoundedDateTimeField(help_text="ISO 8601; requests created before this time."),
        "created_at",
        "lt",
        forms.DateTimeInput,
    )
    source_type = _filter(
        SourceTypeField(help_text="app_label.model of the source object (e.g. blog.comment)."),
        "content_type",
    )
    source_id = _filter(
        serializers.CharField(help_text="Primary key of the source object (with source_type)."),
        "object_id",
    )

    class Meta:
        model = ClassificationRequest
        fields = []  # the declared filters only
        form = HistoryForm


class HistoryFilter(DjangoFilterBackend):
    """django-filter's backend for the history list; a 400 names each bad parameter.

    Only the list is filtered: DRF also filters the queryset of a detail lookup, and a
    stray ``?status=`` there must neither hide the request nor fail. Its form is rendered
    with the app's own template, so ``django_filters`` need not be an installed app.
    """

    template = "django_textclass/api/filters.html"

    def filter_queryset(self, request, queryset, view):
        """Narrow the list by the query string; raises ValidationError (400) on bad input."""
        if getattr(view, "action", "list") != "list":
            return queryset
        return super().filter_queryset(request, queryset, view)
