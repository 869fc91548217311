"""Query-string filters of the request history (``GET /classifications/``)."""

from django.contrib.contenttypes.models import ContentType
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.filters import BaseFilterBackend

from django_textclass.api.fields import BoundedDateTimeField
from django_textclass.models import Status


class HistoryQuerySerializer(serializers.Serializer):
    """The filters, validated like a body: a bad value answers 400 naming the parameter."""

    status = serializers.CharField(
        required=False,
        help_text="One status or several, comma-separated: pending,running,succeeded,"
        "failed,cancelled.",
    )
    model = serializers.CharField(required=False, help_text="Hub repository id, exact.")
    label = serializers.CharField(required=False, help_text="Top label, exact (e.g. POSITIVE).")
    created_after = BoundedDateTimeField(
        required=False, help_text="ISO 8601; requests created at or after this time."
    )
    created_before = BoundedDateTimeField(
        required=False, help_text="ISO 8601; requests created before this time."
    )
    source_type = serializers.CharField(
        required=False, help_text="app_label.model of the source object (e.g. blog.comment)."
    )
    source_id = serializers.CharField(
        required=False, help_text="Primary key of the source object (with source_type)."
    )

    def validate_status(self, value):
        """``"a,b"`` -> ``["a", "b"]``, each a known status."""
        statuses = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [part for part in statuses if part not in Status.values]
        if unknown or not statuses:
            raise serializers.ValidationError(
                f"Unknown status {', '.join(unknown) or value!r}; "
                f"use {', '.join(Status.values)}."
            )
        return statuses

    def validate_source_type(self, value):
        """``app_label.model`` -> its ContentType."""
        app_label, _, model = value.lower().partition(".")
        try:
            return ContentType.objects.get_by_natural_key(app_label, model)
        except ContentType.DoesNotExist:
            raise serializers.ValidationError(
                "Unknown source type; use app_label.model, e.g. blog.comment."
            ) from None

    def validate(self, attrs):
        """A non-empty range; ``source_id`` only with ``source_type``."""
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError(
                {"created_before": ["Must be later than created_after."]}
            )
        if "source_id" in attrs and "source_type" not in attrs:
            raise serializers.ValidationError({"source_type": ["Required with source_id."]})
        return attrs


class HistoryFilter(BaseFilterBackend):
    """Applies :class:`HistoryQuerySerializer`'s filters; every one is an indexed column."""

    def filter_queryset(self, request, queryset, view):
        """Narrow ``queryset`` by the query string; raises ValidationError (400) on bad input.

        Only the list is filtered: DRF also filters the queryset of a detail lookup, and
        a stray ``?status=`` there must neither hide the request nor fail.
        """
        if getattr(view, "action", "list") != "list":
            return queryset
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        lookups = {
            "status__in": data.get("status"),
            "model_id": data.get("model"),
            "top_label": data.get("label"),
            "created_at__gte": data.get("created_after"),
            "created_at__lt": data.get("created_before"),
            "content_type": data.get("source_type"),
            "object_id": data.get("source_id"),
        }
        return queryset.filter(**{key: value for key, value in lookups.items()
                                  if value is not None})

    def get_schema_operation_parameters(self, view):
        """The filters as OpenAPI query parameters (read by drf-spectacular)."""
        serializer = HistoryQuerySerializer()
        types = {BoundedDateTimeField: "date-time"}
        parameters = []
        for name, field in serializer.fields.items():
            schema = {"type": "string"}
            if type(field) in types:
                schema["format"] = types[type(field)]
            parameters.append({
                "name": name, "in": OpenApiParameter.QUERY, "required": False,
                "description": str(field.help_text), "schema": schema,
            })
        return parameters
