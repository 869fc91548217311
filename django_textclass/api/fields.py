"""Strict serializer fields: the API never coerces what a client sent.

DRF's stock fields are forgiving (``5`` becomes ``"5"``, ``"5"`` becomes ``5``,
surrounding whitespace is trimmed). A classification API should store exactly the
text it was given and reject the wrong type with a clear reason, so these fields
do, reusing the pipeline's own checks
(:func:`django_textclass.types.validate_text`,
:func:`django_textclass.types.validate_model_id`).
"""

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from django_textclass import catalog
from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError
from django_textclass.types import validate_model_id, validate_text


class StrictSerializer(serializers.Serializer):
    """A serializer that rejects keys it does not declare (``{"name": ["Unknown field."]}``)."""

    def to_internal_value(self, data):
        """Refuse unknown keys before validating the known ones."""
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class TextField(serializers.CharField):
    """A text to classify, stored exactly as sent.

    Must be a string, not empty or only whitespace, without NUL characters, and at
    most ``TEXTCLASS["MAX_TEXT_LENGTH"]`` characters long.
    """

    default_error_messages = {"not_a_string": "Must be a string."}

    def __init__(self, **kwargs):
        kwargs["trim_whitespace"] = False
        super().__init__(**kwargs)
        # For the schema only: validate_text enforces the limit with its own message.
        self.max_length = app_settings.MAX_TEXT_LENGTH
        self.min_length = 1

    def run_validation(self, data=serializers.empty):
        """Skip CharField's blank handling so that every rule words its own error."""
        return serializers.Field.run_validation(self, data)

    def to_internal_value(self, data):
        """Return ``data`` unchanged if it may be classified, else fail with the reason."""
        if not isinstance(data, str):
            self.fail("not_a_string")
        try:
            return validate_text(data)
        except InvalidInputError as exc:
            raise serializers.ValidationError(_sentence(exc.reason), code="invalid") from None


class ModelIdField(serializers.CharField):
    """A Hugging Face Hub repository id (``name`` or ``owner/name``); no URL, path or ``..``."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def __init__(self, **kwargs):
        kwargs["trim_whitespace"] = False
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        """Return the id if it is a valid repository id, else fail with the reason."""
        if not isinstance(data, str):
            self.fail("not_a_string")
        try:
            return validate_model_id(data)
        except InvalidInputError as exc:
            raise serializers.ValidationError(_sentence(exc.reason), code="invalid") from None


class ModelField(ModelIdField):
    """A model by name: a key of ``TEXTCLASS["MODELS"]`` or a Hub repository id.

    Keys hold no ``/``, so an ``owner/name`` id is never read as a key (docs/models.md).
    """

    def to_internal_value(self, data):
        """Return the name if it is a configured key or a valid repository id."""
        if not isinstance(data, str):
            self.fail("not_a_string")
        try:
            return catalog.validate_name(data)
        except InvalidInputError as exc:
            raise serializers.ValidationError(_sentence(exc.reason), code="invalid") from None


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: strings, floats and booleans are refused, not converted."""

    def to_internal_value(self, data):
        """Accept an ``int`` (not a ``bool``) only."""
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false``: ``"yes"``, ``1`` and the like are refused."""

    def to_internal_value(self, data):
        """Accept a ``bool`` only."""
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


@extend_schema_field(OpenApiTypes.NUMBER)
class WaitField(serializers.FloatField):
    """Seconds to wait for the result: a number >= 0, capped at ``API_MAX_WAIT_SECONDS``."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 0)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        """Accept a JSON number (not a string or bool); values over the cap are lowered to it."""
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        value = super().to_internal_value(data)
        return min(value, float(app_settings.API_MAX_WAIT_SECONDS))


class BoundedDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time between the years 1000 and 9000.

    Dates near the ends of Python's range overflow in time-zone conversion and
    window arithmetic; nobody's classification history lives there.
    """

    default_error_messages = {"range": "Must be between the years 1000 and 9000."}

    def to_internal_value(self, value):
        """Parse as DRF does, then refuse extreme years."""
        parsed = super().to_internal_value(value)
        if not 1000 <= parsed.year <= 9000:
            self.fail("range")
        return parsed


def _sentence(reason):
    """``"must be a string"`` -> ``"Must be a string."`` (DRF's message style)."""
    reason = reason.strip()
    return reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
