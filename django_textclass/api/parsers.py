"""A JSON parser that refuses oversized bodies before reading them whole."""

import io

from rest_framework.parsers import JSONParser

from django_textclass.api.exceptions import PayloadTooLarge
from django_textclass.conf import app_settings


class BoundedJSONParser(JSONParser):
    """:class:`~rest_framework.parsers.JSONParser` with a size limit.

    A body over ``TEXTCLASS["API_MAX_BODY_BYTES"]`` answers 413: the declared
    ``Content-Length`` is checked first, and the bytes actually read are capped
    too, so a client that lies about the length cannot make the server buffer
    more than the limit. ``NaN`` and ``Infinity`` are refused (DRF's strict JSON).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        """Parse at most ``API_MAX_BODY_BYTES`` of JSON.

        Raises:
            PayloadTooLarge: the body is larger than the limit.
            ParseError: the body is not valid JSON in the declared encoding.
        """
        limit = app_settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        if request is not None:
            declared = request.META.get("CONTENT_LENGTH") or "0"
            if declared.isdigit() and int(declared) > limit:
                raise PayloadTooLarge(self._detail(limit))
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(self._detail(limit))
        return super().parse(io.BytesIO(body), media_type, parser_context)

    @staticmethod
    def _detail(limit):
        return f"The request body is larger than {limit} bytes."

