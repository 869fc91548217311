"""CSV export of the (filtered) history, streamed row by row.

The rows are read with a server-side cursor in chunks and written as they are
read, so exporting a million rows never holds them in memory. Cells that a
spreadsheet would run as a formula are neutralised (see :func:`safe_cell`).
"""

import csv

from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from django.utils import timezone

#: Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
CHUNK_SIZE = 2000


def columns():
    """``[(header, queryset path)]`` of the export, in order."""
    username = get_user_model().USERNAME_FIELD
    return [
        ("uuid", "uuid"),
        ("created_at", "created_at"),
        ("model_id", "model_id"),
        ("model_key", "model_key"),
        ("revision", "revision"),
        ("status", "status"),
        ("top_label", "top_label"),
        ("top_score", "top_score"),
        ("attempts", "attempts"),
        ("started_at", "started_at"),
        ("finished_at", "finished_at"),
        ("backend", "backend"),
        ("backend_ms", "backend_ms"),
        ("error_code", "error_code"),
        ("error_message", "error_message"),
        ("owner", f"owner__{username}"),
        ("source_app", "content_type__app_label"),
        ("source_model", "content_type__model"),
        ("source_id", "object_id"),
        ("function_to_apply", "function_to_apply"),
        ("top_k", "top_k"),
        ("use_cache", "use_cache"),
        ("text", "text"),
    ]


def safe_cell(value):
    """A CSV cell for ``value``: dates in ISO 8601, None empty, formulas defused.

    A string starting with ``=``, ``+``, ``-``, ``@``, a tab or a line break gets a
    leading apostrophe, so a spreadsheet shows it as text instead of running it.
    """
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    return value


class _Echo:
    """A file-like object whose ``write`` hands the line back to the caller."""

    def write(self, value):
        return value


def stream_rows(queryset):
    """Yield the CSV lines (header first) of ``queryset``, reading it in chunks."""
    spec = columns()
    writer = csv.writer(_Echo())
    yield writer.writerow([header for header, _ in spec])
    rows = queryset.values_list(*[path for _, path in spec]).iterator(chunk_size=CHUNK_SIZE)
    for row in rows:
        yield writer.writerow([safe_cell(value) for value in row])


def csv_response(queryset, name="classification-requests"):
    """A ``StreamingHttpResponse`` that downloads ``queryset`` as CSV."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(stream_rows(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
