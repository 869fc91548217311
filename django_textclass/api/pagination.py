"""Cursor pagination of the request history."""

from datetime import timezone as dt_timezone

from django.core.exceptions import ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from django_textclass.conf import app_settings
from django_textclass.models import ClassificationRequest


class HistoryPagination(CursorPagination):
    """Newest first, ``page_size`` up to ``API_MAX_PAGE_SIZE`` (default ``API_PAGE_SIZE``).

    A cursor stays stable while new requests arrive, unlike page numbers, and never
    counts the whole table. An unusable ``page_size`` falls back to the default; a
    larger one is capped. A cursor that does not decode to a position this paginator
    could have written answers 404 ``Invalid cursor``.
    """

    ordering = "-created_at"
    page_size_query_param = "page_size"

    def __init__(self):
        # One paginator per request: the settings are read late, as everywhere.
        self.page_size = app_settings.API_PAGE_SIZE
        self.max_page_size = app_settings.API_MAX_PAGE_SIZE

    def decode_cursor(self, request):
        """DRF's cursor, its position checked to be a date-time the query can use.

        A cursor is base64 the client can forge: a position that is not a date-time
        would fail in the queryset's filter (a 500), not here.
        """
        cursor = super().decode_cursor(request)
        position = None if cursor is None else cursor.position
        if position is not None and not _usable_position(position):
            raise NotFound(self.invalid_cursor_message)
        return cursor


def _usable_position(position):
    """Whether ``position`` parses as a date-time between the years 1000 and 9000 in UTC."""
    field = ClassificationRequest._meta.get_field(HistoryPagination.ordering.lstrip("-"))
    try:
        moment = field.to_python(position)
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt_timezone.utc)
    except (ValidationError, ValueError, OverflowError):
        return False
    return 1000 <= moment.year <= 9000
