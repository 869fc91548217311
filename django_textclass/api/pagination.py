"""Cursor pagination of the request history."""

from rest_framework.pagination import CursorPagination

from django_textclass.conf import app_settings


class HistoryPagination(CursorPagination):
    """Newest first, ``page_size`` up to ``API_MAX_PAGE_SIZE`` (default ``API_PAGE_SIZE``).

    A cursor stays stable while new requests arrive, unlike page numbers, and never
    counts the whole table. An unusable ``page_size`` falls back to the default; a
    larger one is capped.
    """

    ordering = "-created_at"
    page_size_query_param = "page_size"

    def __init__(self):
        # One paginator per request: the settings are read late, as everywhere.
        self.page_size = app_settings.API_PAGE_SIZE
        self.max_page_size = app_settings.API_MAX_PAGE_SIZE
