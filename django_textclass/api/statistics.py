"""``GET /stats/``: the admin dashboard's aggregates over the caller's requests."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from django_textclass.api.fields import BoundedDateTimeField, ModelIdField
from django_textclass.api.permissions import scope_to_user
from django_textclass.api.views import TextClassAPIView
from django_textclass.models import ClassificationRequest
from django_textclass.services import pacing
from django_textclass.stats import BUCKETS, compute_stats, requests_per_model

#: Default window per bucket width, when ``since`` is not given.
DEFAULT_WINDOWS = {"hour": timedelta(hours=48), "day": timedelta(days=30)}
#: Longest series one call may ask for.
MAX_BUCKETS = 1000
_BUCKET_WIDTH = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


class StatsQuerySerializer(serializers.Serializer):
    """The window and model of ``GET /stats/``."""

    model = ModelIdField(required=False, help_text="Only this model (Hub repository id).")
    since = BoundedDateTimeField(
        required=False,
        help_text="ISO 8601 start (inclusive) of the window of creation times; default "
        "48 hours (bucket=hour) or 30 days (bucket=day) before `until`.",
    )
    until = BoundedDateTimeField(
        required=False, help_text="ISO 8601 end (exclusive) of the window; default now."
    )
    bucket = serializers.ChoiceField(
        choices=BUCKETS, default="day", help_text="Width of the time series buckets."
    )

    def validate(self, attrs):
        """Fill in the default window; refuse empty or oversized ones."""
        until = attrs.setdefault("until", timezone.now())
        since = attrs.setdefault("since", until - DEFAULT_WINDOWS[attrs["bucket"]])
        if since >= until:
            raise serializers.ValidationError({"since": ["Must be earlier than until."]})
        if (until - since) / _BUCKET_WIDTH[attrs["bucket"]] > MAX_BUCKETS:
            raise serializers.ValidationError(
                {
                    "since": [
                        f"The window spans more than {MAX_BUCKETS} {attrs['bucket']} buckets; "
                        "shorten it or use bucket=day."
                    ]
                }
            )
        return attrs


class _Percentiles(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


def _rows(name, **fields):
    return serializers.ListField(child=inline_serializer(name, fields))


class StatsSerializer(serializers.Serializer):
    """The answer of ``GET /stats/`` (documentation only; the view returns a dict)."""

    model = serializers.CharField(allow_null=True)
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    bucket = serializers.ChoiceField(choices=BUCKETS)
    models = _rows(
        "StatsModelCount", model=serializers.CharField(), count=serializers.IntegerField()
    )
    label_distribution = _rows(
        "StatsLabelShare",
        label=serializers.CharField(),
        count=serializers.IntegerField(),
        share=serializers.FloatField(),
    )
    labels_over_time = _rows(
        "StatsLabelBucket",
        bucket=serializers.DateTimeField(),
        label=serializers.CharField(),
        count=serializers.IntegerField(),
    )
    score_histogram = _rows(
        "StatsScoreBin",
        lower=serializers.FloatField(),
        upper=serializers.FloatField(),
        count=serializers.IntegerField(),
    )
    status_counts = serializers.DictField(child=serializers.IntegerField())
    failure_rate = serializers.FloatField(allow_null=True)
    latency_ms = _Percentiles()
    backend_ms = _Percentiles()
    throughput = _rows(
        "StatsThroughput", bucket=serializers.DateTimeField(), count=serializers.IntegerField()
    )
    percentiles_estimated = serializers.BooleanField(
        help_text="True when closed days were read from the daily roll-up: the percentiles "
        "are then within 1 % of the exact values (counts are always exact)."
    )
    backends = _rows(
        "StatsBackendPace",
        backend=serializers.CharField(),
        model=serializers.CharField(allow_null=True, help_text="Null for the whole backend."),
        circuit=serializers.ChoiceField(choices=["closed", "open", "half_open"]),
        not_before=serializers.DateTimeField(
            allow_null=True, help_text=("No call goes before this time (null or past: calls go).")
        ),
        reason=serializers.CharField(),
        failures=serializers.IntegerField(),
        last_error=serializers.CharField(),
    )


class StatsView(TextClassAPIView, APIView):
    """Label distribution, status counts, failure rate and latencies of the caller's requests."""

    @extend_schema(
        summary="Statistics of the caller's requests",
        description="The same aggregation as the admin dashboard "
        "(`django_textclass.stats.compute_stats`), over requests created in "
        "[since, until), optionally of one model. `models` lists every model in the window "
        "with its request count. Staff see every user's requests. `backends` is the pacing "
        "state every worker obeys: rate-limit waits and each backend's circuit breaker.",
        parameters=[StatsQuerySerializer],
        responses={
            200: StatsSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Bad parameter.",
                examples=[
                    OpenApiExample("Bad bucket", {"bucket": ['"week" is not a valid choice.']})
                ],
            ),
            401: OpenApiResponse(description="Not authenticated (token)."),
            403: OpenApiResponse(description="Not authenticated (session), or not allowed."),
        },
    )
    def get(self, request):
        """Compute the statistics for the window in the query string."""
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        queryset = scope_to_user(request, ClassificationRequest.objects.all()).filter(
            created_at__gte=params["since"], created_at__lt=params["until"]
        )
        models = requests_per_model(queryset)
        if "model" in params:
            queryset = queryset.filter(model_id=params["model"])
        return Response(
            {
                "model": params.get("model"),
                "since": params["since"],
                "until": params["until"],
                "bucket": params["bucket"],
                "models": [{"model": model, "count": count} for model, count in models],
                **compute_stats(queryset, bucket=params["bucket"]),
                "backends": [pace_of(row) for row in pacing.states()],
            }
        )


def pace_of(row):
    """One backend's (or model's) pacing state, as ``GET /stats/`` shows it."""
    return {
        "backend": row.backend,
        "model": row.model_id or None,
        "circuit": row.circuit,
        "not_before": row.not_before,
        "reason": row.reason,
        "failures": row.failures,
        "last_error": row.last_error,
    }
