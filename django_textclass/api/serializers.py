"""What the classification endpoints accept and answer.

Input serializers validate only (submission goes through
:func:`django_textclass.services.submit`); the output serializer is read-only, so
owner, status, results and timings can never be written through the API.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from django_textclass.api.fields import (
    ModelField,
    StrictBooleanField,
    StrictIntegerField,
    StrictSerializer,
    TextField,
    WaitField,
)
from django_textclass.conf import app_settings
from django_textclass.models import Status
from django_textclass.types import FUNCTIONS_TO_APPLY


class ParametersSerializer(StrictSerializer):
    """The Inference API's ``parameters`` object."""

    function_to_apply = serializers.ChoiceField(
        choices=FUNCTIONS_TO_APPLY,
        required=False,
        allow_null=True,
        help_text="sigmoid, softmax or none; omitted or null uses the model's default.",
    )
    top_k = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=1000,
        help_text="Keep only the K most probable labels (1 to 1000); omitted keeps all.",
    )


class SubmitSerializer(StrictSerializer):
    """``POST /classifications/``: one ``text`` or a batch of ``texts``, never both."""

    text = TextField(required=False, help_text="One text to classify.")
    texts = serializers.ListField(
        child=TextField(),
        required=False,
        allow_empty=False,
        help_text="A batch of texts (at most TEXTCLASS['API_MAX_BATCH']).",
    )
    model = ModelField(
        required=False,
        help_text="A model key of TEXTCLASS['MODELS'] (its backend, model, revision and "
        "default parameters), or a Hub repository id (owner/name); default "
        "TEXTCLASS['DEFAULT_MODEL'].",
    )
    parameters = ParametersSerializer(required=False)
    use_cache = StrictBooleanField(
        required=False,
        default=True,
        help_text="false: never reuse a stored result, and ask the API not to use its cache.",
    )
    wait = WaitField(
        required=False,
        default=0,
        help_text="Seconds to wait for the result (capped at TEXTCLASS['API_MAX_WAIT_SECONDS']); "
        "200 with the result if it is ready in time, else 202.",
    )

    def get_fields(self):
        """Size the batch field from the settings at each request (never at import)."""
        fields = super().get_fields()
        fields["texts"].max_length = limit = app_settings.API_MAX_BATCH
        fields["texts"].validators = [
            _MaxItems(limit, fields["texts"].error_messages["max_length"].format(max_length=limit))
        ]
        return fields

    def validate(self, attrs):
        """Exactly one of ``text`` and ``texts``."""
        if "text" in attrs and "texts" in attrs:
            raise serializers.ValidationError({"texts": ["Give either text or texts, not both."]})
        if "text" not in attrs and "texts" not in attrs:
            raise serializers.ValidationError(
                {"text": ["This field is required (or give a list in texts)."]}
            )
        return attrs

    def submit_kwargs(self):
        """Keyword arguments for :func:`django_textclass.services.submit`."""
        data = self.validated_data
        parameters = data.get("parameters") or {}
        return {
            "texts": data["text"] if "text" in data else data["texts"],
            "model": data.get("model"),
            "function_to_apply": parameters.get("function_to_apply"),
            "top_k": parameters.get("top_k"),
            "use_cache": data["use_cache"],
        }


class _MaxItems:
    """A list-length validator whose limit is fixed when the serializer is built."""

    def __init__(self, limit, message):
        self.limit, self.message = limit, message

    def __call__(self, value):
        if len(value) > self.limit:
            raise serializers.ValidationError(self.message, code="max_length")


class LabelScoreSerializer(serializers.Serializer):
    """One ``{label, score}`` of an answer."""

    label = serializers.CharField()
    score = serializers.FloatField()


class ErrorSerializer(serializers.Serializer):
    """Why the last attempt failed."""

    code = serializers.CharField(help_text="e.g. http_401, http_503, timeout, retries_exhausted.")
    message = serializers.CharField()


class SourceSerializer(serializers.Serializer):
    """The model instance whose field held the text."""

    type = serializers.CharField(help_text="app_label.model of the source object.")
    id = serializers.CharField()
    field = serializers.CharField()


class AppliedParametersSerializer(serializers.Serializer):
    """The parameters the request was sent with (null: the model's default)."""

    function_to_apply = serializers.CharField(allow_null=True)
    top_k = serializers.IntegerField(allow_null=True)


#: Waits and retries shown on one request (the newest).
MAX_EVENTS = 50


class ClassificationSerializer(serializers.Serializer):
    """A classification request, as the API shows it. Everything is read-only."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    url = serializers.SerializerMethodField(help_text="This request's status URL.")
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    model = serializers.CharField(
        source="model_id",
        read_only=True,
        help_text=(
            "The Hub repository id that classified the text (a dedicated endpoint's URL for a "
            "key that names one)."
        ),
    )
    key = serializers.SerializerMethodField(
        help_text="The TEXTCLASS['MODELS'] key the text was submitted with; null if none."
    )
    revision = serializers.SerializerMethodField(
        help_text="The model revision the key named when the text was submitted; null if none."
    )
    parameters = serializers.SerializerMethodField()
    use_cache = serializers.BooleanField(read_only=True)
    text = serializers.CharField(read_only=True)
    owner = serializers.SerializerMethodField(help_text="Username of the submitter, or null.")
    result = serializers.SerializerMethodField(
        help_text="Every label with its score, best first; null until the request succeeded."
    )
    top_label = serializers.SerializerMethodField()
    top_score = serializers.FloatField(read_only=True, allow_null=True)
    error = serializers.SerializerMethodField(
        help_text="The last failure (also kept while a retry is pending); null if none."
    )
    attempts = serializers.IntegerField(
        read_only=True,
        help_text=(
            "Attempts spent: calls that failed through the text's own error, or succeeded. Waits "
            "the backend imposed (rate limits, outages) are not counted; see `events` on the "
            "request's own URL."
        ),
    )
    cached = serializers.SerializerMethodField(
        help_text="true when an earlier stored result answered this request."
    )
    created_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    next_attempt_at = serializers.SerializerMethodField(
        help_text="When a pending request will be sent (after a retry backoff); else null."
    )
    duration_ms = serializers.SerializerMethodField(help_text="Last start to finish, in ms.")
    latency_ms = serializers.SerializerMethodField(help_text="Submission to finish, in ms.")
    backend_ms = serializers.IntegerField(read_only=True, allow_null=True)
    source = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj):
        """The absolute URL of this request."""
        return reverse(
            "textclass_api:classification-detail",
            kwargs={"id": obj.uuid},
            request=self.context.get("request"),
        )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_key(self, obj):
        """The model key, or None."""
        return obj.model_key or None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_revision(self, obj):
        """The revision, or None."""
        return obj.revision or None

    @extend_schema_field(AppliedParametersSerializer)
    def get_parameters(self, obj):
        """The parameters, null where the model default applies."""
        return {"function_to_apply": obj.function_to_apply or None, "top_k": obj.top_k}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_owner(self, obj):
        """The submitter's username, or None."""
        return obj.owner.get_username() if obj.owner_id else None

    @extend_schema_field(LabelScoreSerializer(many=True, allow_null=True))
    def get_result(self, obj):
        """The ranking once succeeded, else None."""
        return obj.labels if obj.status == Status.SUCCEEDED else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_top_label(self, obj):
        """The best label, or None."""
        return obj.top_label or None

    @extend_schema_field(ErrorSerializer(allow_null=True))
    def get_error(self, obj):
        """``{code, message}`` of the last failure, or None."""
        if not obj.error_code:
            return None
        return {"code": obj.error_code, "message": obj.error_message}

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_cached(self, obj):
        """Whether a stored result answered the request."""
        return obj.reused_from_id is not None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_attempt_at(self, obj):
        """When a pending request is due."""
        if obj.status != Status.PENDING or obj.next_attempt_at is None:
            return None
        return serializers.DateTimeField().to_representation(obj.next_attempt_at)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_duration_ms(self, obj):
        """Last start to finish, in ms."""
        return _ms(obj.started_at, obj.finished_at)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_latency_ms(self, obj):
        """Submission to finish, in ms."""
        return _ms(obj.created_at, obj.finished_at)

    @extend_schema_field(SourceSerializer(allow_null=True))
    def get_source(self, obj):
        """The source object as ``{type, id, field}``, or None."""
        if not obj.content_type_id:
            return None
        content_type = obj.content_type
        return {
            "type": f"{content_type.app_label}.{content_type.model}",
            "id": obj.object_id,
            "field": obj.source_field,
        }


class BatchSerializer(serializers.Serializer):
    """The answer to a batch submission: the requests in the order of ``texts``."""

    results = ClassificationSerializer(many=True)


def _ms(start, end):
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000)


class EventSerializer(serializers.Serializer):
    """One wait or retry of a request (:class:`~django_textclass.models.RequestEvent`)."""

    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(
        choices=["retry", "wait"],
        help_text=(
            "retry: an attempt was spent (the text's own error); wait: none was (the backend's "
            "rate limit, a loading model, an outage, a twin in flight, a batch bisected)."
        ),
    )
    reason = serializers.CharField(help_text="The error code of a retry, or why it waited.")
    attempts = serializers.IntegerField(help_text="Attempts spent so far.")
    wait_seconds = serializers.FloatField(allow_null=True)
    message = serializers.CharField()


class ClassificationDetailSerializer(ClassificationSerializer):
    """One request, with the history of its waits and retries (newest last)."""

    events = serializers.SerializerMethodField(
        help_text=f"Its last {MAX_EVENTS} waits and retries, oldest first."
    )

    @extend_schema_field(EventSerializer(many=True))
    def get_events(self, obj):
        """The request's latest waits and retries."""
        events = list(obj.events.order_by("-at", "-pk")[:MAX_EVENTS])
        return EventSerializer(events[::-1], many=True).data
