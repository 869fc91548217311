"""The API's JSON parser: one size limit, bounded reads, bounded nesting.

It is deliberately not a subclass of DRF's ``JSONParser``: DRF reads the whole body
through ``request.body`` for those (where Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
answers an HTML 400 before any parser runs), and hands every other parser the
request's stream. Reading the stream itself, this parser makes
``TEXTCLASS["API_MAX_BODY_BYTES"]`` the one limit of the API's bodies, answered with
the API's own 413.
"""

import codecs
import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

from django_textclass.api.exceptions import PayloadTooLarge
from django_textclass.conf import app_settings

#: Deepest nesting of arrays and objects a body may have. The API's own bodies are two
#: levels deep; the limit only keeps a hostile body from exhausting the recursion of
#: whatever reads it.
MAX_DEPTH = 32


class BoundedJSONParser(BaseParser):
    """Parses a JSON body of at most ``TEXTCLASS["API_MAX_BODY_BYTES"]`` bytes.

    A larger body answers 413: the declared ``Content-Length`` is checked first, and the
    bytes actually read are capped too, so a client that lies about the length cannot
    make the server buffer more than the limit. ``NaN`` and ``Infinity`` are refused
    (DRF's strict JSON), and so is nesting deeper than :data:`MAX_DEPTH`.
    """

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        """Parse at most ``API_MAX_BODY_BYTES`` of JSON.

        Raises:
            PayloadTooLarge: the body is larger than the limit.
            ParseError: the body is not valid JSON in the declared encoding, or it is
                nested deeper than :data:`MAX_DEPTH`.
        """
        parser_context = parser_context or {}
        limit = app_settings.API_MAX_BODY_BYTES
        request = parser_context.get("request")
        if request is not None:
            declared = request.META.get("CONTENT_LENGTH") or "0"
            if declared.isdigit() and int(declared) > limit:
                raise PayloadTooLarge(self._detail(limit))
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise PayloadTooLarge(self._detail(limit))
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(codecs.decode(body, encoding), parse_constant=_refuse_constant)
        except (ValueError, LookupError) as exc:  # bad JSON, bytes, or charset name
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError(_too_deep()) from None
        if _depth_over(data, MAX_DEPTH):
            raise ParseError(_too_deep())
        return data

    @staticmethod
    def _detail(limit):
        return f"The request body is larger than {limit} bytes."


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _too_deep():
    return f"JSON parse error - arrays and objects nested deeper than {MAX_DEPTH} levels"


def _depth_over(data, limit):
    """Whether ``data`` nests lists and dicts deeper than ``limit`` (read without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
