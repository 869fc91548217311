"""OpenAPI descriptions of the endpoints: responses, errors and examples.

Kept apart from the views so that those read as code; drf-spectacular applies
these decorators when it builds ``/api/schema/``.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from django_textclass.api.links import OPERATION_IDS
from django_textclass.api.serializers import (
    BatchSerializer,
    ClassificationDetailSerializer,
    ClassificationSerializer,
    SubmitSerializer,
)

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
REQUEST_ID = "3f1c2a9e-8d4b-4c6f-9a51-2b7e0d6c1f48"

Detail = inline_serializer("Detail", {"detail": serializers.CharField()})
ConflictBody = inline_serializer(
    "ConflictDetail",
    {
        "detail": serializers.CharField(),
        "code": serializers.ChoiceField(choices=["not_retryable", "not_cancellable"]),
        "status": serializers.CharField(help_text="The request's current status."),
    },
)

SUCCEEDED_EXAMPLE = {
    "id": REQUEST_ID,
    "url": f"https://example.com/api/classifications/{REQUEST_ID}/",
    "status": "succeeded",
    "model": MODEL,
    "parameters": {"function_to_apply": None, "top_k": None},
    "use_cache": True,
    "text": "I like you. I love you",
    "owner": "alice",
    "result": [
        {"label": "POSITIVE", "score": 0.9998695850372314},
        {"label": "NEGATIVE", "score": 0.0001304351753788069},
    ],
    "top_label": "POSITIVE",
    "top_score": 0.9998695850372314,
    "error": None,
    "attempts": 1,
    "cached": False,
    "created_at": "2026-11-25T14:47:00.120000Z",
    "started_at": "2026-11-25T14:47:00.180000Z",
    "finished_at": "2026-11-25T14:47:00.530000Z",
    "next_attempt_at": None,
    "duration_ms": 350,
    "latency_ms": 410,
    "backend_ms": 341,
    "source": None,
}
PENDING_EXAMPLE = {
    **SUCCEEDED_EXAMPLE,
    "status": "pending",
    "result": None,
    "top_label": None,
    "top_score": None,
    "attempts": 0,
    "started_at": None,
    "finished_at": None,
    "next_attempt_at": "2026-11-25T14:47:00.120000Z",
    "duration_ms": None,
    "latency_ms": None,
    "backend_ms": None,
}
FAILED_EXAMPLE = {
    **PENDING_EXAMPLE,
    "status": "failed",
    "attempts": 5,
    "next_attempt_at": None,
    "finished_at": "2026-11-25T14:48:31.007000Z",
    "latency_ms": 90887,
    "error": {
        "code": "retries_exhausted",
        "message": "gave up after 5 attempt(s); last error: HTTP 503",
    },
}

VALIDATION_400 = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input, nothing stored: each offending field with its reasons "
    "(unknown fields included).",
    examples=[
        OpenApiExample(
            "Empty text",
            {"text": ["Must not be empty or only whitespace."]},
            response_only=True,
            status_codes=["400"],
        ),
        OpenApiExample(
            "Bad batch item",
            {"texts": {"1": ["Must be a string."]}},
            response_only=True,
            status_codes=["400"],
        ),
        OpenApiExample(
            "Bad model id",
            {"model": ["Not a valid Hugging Face repository id (owner/name)."]},
            response_only=True,
            status_codes=["400"],
        ),
        OpenApiExample(
            "Unknown field",
            {"colour": ["Unknown field."]},
            response_only=True,
            status_codes=["400"],
        ),
    ],
)
AUTH_ERRORS = {
    401: OpenApiResponse(Detail, description="Not authenticated (token authentication)."),
    403: OpenApiResponse(
        Detail, description="Not authenticated (session authentication), or not allowed."
    ),
}
NOT_FOUND = {
    404: OpenApiResponse(
        Detail, description="No such request among the caller's (another user's id answers 404)."
    )
}
THROTTLED = {
    429: OpenApiResponse(
        Detail, description="Over TEXTCLASS['API_THROTTLE_RATE']; see the Retry-After header."
    )
}
ID_PARAMETER = OpenApiParameter(
    "id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The request's public id."
)
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="1-255 visible ASCII characters (e.g. a UUID). A repeated POST with the same "
    "key returns the original requests (header Idempotent-Replayed: true); the same key with "
    "a different body answers 422.",
)


SUBMITTED = PolymorphicProxySerializer(
    component_name="Submitted",
    serializers=[ClassificationSerializer, BatchSerializer],
    resource_type_field_name=None,
)


def _example(name, value, **kwargs):
    return OpenApiExample(name, value=value, **kwargs)


classification_viewset = extend_schema_view(
    list=extend_schema(
        operation_id=OPERATION_IDS["list"],
        summary="The caller's classification history",
        description="Newest first, cursor-paginated (follow `next`). Staff see every user's "
        "requests. Filters combine with AND.",
        responses={
            200: ClassificationSerializer(many=True),
            400: VALIDATION_400,
            **AUTH_ERRORS,
            404: OpenApiResponse(Detail, description="Invalid cursor."),
        },
    ),
    retrieve=extend_schema(
        operation_id=OPERATION_IDS["retrieve"],
        summary="One classification request",
        parameters=[ID_PARAMETER],
        responses={200: ClassificationDetailSerializer, **AUTH_ERRORS, **NOT_FOUND},
        examples=[
            _example("Succeeded", SUCCEEDED_EXAMPLE, response_only=True),
            _example("Pending", PENDING_EXAMPLE, response_only=True),
            _example("Failed", FAILED_EXAMPLE, response_only=True),
        ],
    ),
    create=extend_schema(
        operation_id=OPERATION_IDS["create"],
        summary="Submit one text or a batch",
        description="Stores the text(s) at once and answers 202 with the request(s) and their "
        "status URL (`Location` for a single text). With `wait`, answers 200 instead when "
        "every request reached a final status in time.",
        request=SubmitSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            202: OpenApiResponse(
                SUBMITTED,
                description="Stored; classified later. A batch "
                'answers {"results": [...]}, in the order of `texts`.',
            ),
            200: OpenApiResponse(SUBMITTED, description="Final within `wait`."),
            400: VALIDATION_400,
            **AUTH_ERRORS,
            413: OpenApiResponse(Detail, description="Body over TEXTCLASS['API_MAX_BODY_BYTES']."),
            422: OpenApiResponse(Detail, description="Idempotency-Key reused with another body."),
            **THROTTLED,
        },
        examples=[
            _example(
                "One text", {"text": "I like you. I love you", "model": MODEL}, request_only=True
            ),
            _example(
                "A batch with parameters",
                {
                    "texts": ["I love it", "I hate it"],
                    "model": MODEL,
                    "parameters": {"function_to_apply": "sigmoid", "top_k": 1},
                },
                request_only=True,
            ),
            _example("Wait up to 5 s", {"text": "What a lovely day", "wait": 5}, request_only=True),
            _example("Accepted", PENDING_EXAMPLE, response_only=True, status_codes=["202"]),
            _example("Ready in time", SUCCEEDED_EXAMPLE, response_only=True, status_codes=["200"]),
        ],
    ),
    retry=extend_schema(
        operation_id=OPERATION_IDS["retry"],
        summary="Send a failed or cancelled request again",
        description="Resets its attempt budget; answers 202 with the request, now pending.",
        parameters=[ID_PARAMETER],
        request=None,
        responses={
            202: ClassificationSerializer,
            **AUTH_ERRORS,
            **NOT_FOUND,
            409: OpenApiResponse(ConflictBody, description="Not failed or cancelled."),
            **THROTTLED,
        },
    ),
    cancel=extend_schema(
        operation_id=OPERATION_IDS["cancel"],
        summary="Cancel a pending request",
        parameters=[ID_PARAMETER],
        request=None,
        responses={
            200: ClassificationSerializer,
            **AUTH_ERRORS,
            **NOT_FOUND,
            409: OpenApiResponse(ConflictBody, description="Not pending."),
        },
    ),
)
