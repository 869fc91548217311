"""OpenAPI description of the drop-in Inference API endpoint."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from django_textclass.api.links import OPERATION_IDS

ErrorBody = inline_serializer("InferenceError", {"error": serializers.CharField()})
LoadingBody = inline_serializer(
    "InferenceLoading",
    {
        "error": serializers.CharField(),
        "estimated_time": serializers.FloatField(
            help_text="Seconds until the answer may be ready."
        ),
    },
)
LABEL_SCORE = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
    "required": ["label", "score"],
}
#: One ranking (best first) per input.
RANKINGS = {"type": "array", "items": {"type": "array", "items": LABEL_SCORE}}
#: ``inputs``: a string or a list of strings.
INPUTS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


def _error(description, example):
    return OpenApiResponse(
        ErrorBody,
        description=description,
        examples=[OpenApiExample(description, {"error": example}, response_only=True)],
    )


def _header(name, description):
    return OpenApiParameter(
        name,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        required=False,
        enum=["true", "false"],
        description=description,
    )


def inference_view(request_serializer):
    """The schema decorator of the view; ``request_serializer`` describes the body."""
    return extend_schema_view(
        post=extend_schema(
            operation_id=OPERATION_IDS["inference"],
            summary="Inference API text classification (drop-in)",
            description="The Hugging Face Inference API's own contract: point a client written for "
            "the API at this URL. Each input is stored as a classification request (see "
            "/classifications/; their ids are in the X-Textclass-Requests header). Answers one "
            "ranking per input, best first; a single string also answers `[[...]]`. When the "
            "worker has not answered within TEXTCLASS['INFERENCE_WAIT_SECONDS'] "
            "(['INFERENCE_WAIT_FOR_MODEL_SECONDS'] with `x-wait-for-model: true`) it answers 503 "
            "with `estimated_time`; call again with the same inputs to wait for the same requests.",
            tags=["inference"],
            parameters=[
                OpenApiParameter(
                    "model_id",
                    OpenApiTypes.STR,
                    OpenApiParameter.PATH,
                    description="Hub repository id, `name` or `owner/name` (the slash unescaped).",
                ),
                _header(
                    "x-use-cache",
                    "false: do not reuse stored results, and ask the API not to use its cache.",
                ),
                _header(
                    "x-wait-for-model",
                    "true: wait up to INFERENCE_WAIT_FOR_MODEL_SECONDS before answering 503.",
                ),
            ],
            request=request_serializer,
            responses={
                200: OpenApiResponse(
                    RANKINGS,
                    description="One ranking per input.",
                    examples=[
                        OpenApiExample(
                            "One string",
                            [
                                [
                                    {"label": "POSITIVE", "score": 0.9998695850372314},
                                    {"label": "NEGATIVE", "score": 0.0001304351753788069},
                                ]
                            ],
                            response_only=True,
                        ),
                    ],
                ),
                400: _error(
                    "Invalid input (nothing stored)",
                    "inputs: Must not be empty or only whitespace.",
                ),
                401: _error("Missing or invalid token", "Invalid token."),
                409: _error("A request was cancelled meanwhile", "The request was cancelled."),
                413: _error("Body too large", "The request body is larger than 2097152 bytes."),
                429: _error(
                    "Over the per-user rate",
                    "Request was throttled. Expected available in 12 seconds.",
                ),
                502: _error(
                    "The backend failed for good",
                    "Classification failed (http_401): HTTP 401 from the Inference API",
                ),
                503: OpenApiResponse(
                    LoadingBody,
                    description="Not ready in time; call again.",
                    examples=[
                        OpenApiExample(
                            "Not ready",
                            {
                                "error": "Model distilbert/distilbert-base-uncased-finetuned-"
                                "sst-2-english is currently loading",
                                "estimated_time": 20.0,
                            },
                            response_only=True,
                        )
                    ],
                ),
            },
            examples=[
                OpenApiExample(
                    "The seed's call", {"inputs": "I like you. I love you"}, request_only=True
                ),
                OpenApiExample(
                    "A list with parameters",
                    {
                        "inputs": ["I love it", "I hate it"],
                        "parameters": {"function_to_apply": "sigmoid", "top_k": 1},
                    },
                    request_only=True,
                ),
            ],
        )
    )
