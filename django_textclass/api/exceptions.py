"""Errors the API answers with, beyond DRF's own (400, 401, 403, 404, 429)."""

from rest_framework import status
from rest_framework.exceptions import APIException

from django_textclass.types import has_lone_surrogate


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


def printable(detail):
    r"""An error body with every string made encodable: lone surrogates become ``\udXXX``.

    Error messages may echo what the client sent (an unknown field's name, an invalid
    choice), and JSON may carry a lone surrogate, which no UTF-8 body can hold: the
    renderer would fail and the client get a 500 instead of its 400. Keys and values
    are escaped alike; everything else is kept as it is.
    """
    if isinstance(detail, str):
        if not has_lone_surrogate(detail):
            return detail
        return detail.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(detail, dict):
        return {printable(key): printable(value) for key, value in detail.items()}
    if isinstance(detail, (list, tuple)):
        return [printable(item) for item in detail]
    return detail
