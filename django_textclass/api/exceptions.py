"""Errors the API answers with, beyond DRF's own (400, 401, 403, 404, 429)."""

from rest_framework import status
from rest_framework.exceptions import APIException


class PayloadTooLarge(APIException):
    """413: the request body is larger than ``TEXTCLASS["API_MAX_BODY_BYTES"]``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Conflict(APIException):
    """409: the request is not in a state that allows the action (retry, cancel).

    The body names the reason and the request's current status::

        {"detail": "...", "code": "not_cancellable", "status": "succeeded"}
    """

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request is not in a state that allows this action."
    default_code = "conflict"

    def __init__(self, detail, *, code, current_status):
        super().__init__({"detail": detail, "code": code, "status": current_status})


class IdempotencyKeyReused(APIException):
    """422: an ``Idempotency-Key`` already used for a different request body."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = (
        "This Idempotency-Key was already used with a different request body; "
        "use a new key for a new request."
    )
    default_code = "idempotency_key_reused"
