"""``POST /models/{model_id}``: the Hugging Face Inference API's own contract.

Code written for the Inference API (``requests.post(API_URL, headers={"Authorization":
f"Bearer {token}"}, json={"inputs": ...})``, or ``huggingface_hub.InferenceClient``
pointed at this URL) works unchanged against the site. Each input is stored as a
classification request like any other (history, result cache, quotas), the view
waits for the worker, and answers in the API's shape:

* 200 ``[[{label, score}, ...]]``: one ranking per input (a single string too);
* 503 ``{"error": ..., "estimated_time": seconds}`` when the answer is not ready in
  ``INFERENCE_WAIT_SECONDS`` (``INFERENCE_WAIT_FOR_MODEL_SECONDS`` with the header
  ``x-wait-for-model: true``), as the API does while a model loads. Calling again
  with the same inputs waits for the same stored requests, it does not add more;
* every error as ``{"error": "..."}``.

The API's URLs mount it with :func:`as_async_view`: under ASGI the wait is a coroutine.
"""

from asgiref.sync import sync_to_async
from django.apps import apps
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from django_textclass import catalog, services
from django_textclass.api import inference_schema
from django_textclass.api.fields import (
    ModelField,
    StrictBooleanField,
    StrictSerializer,
    TextField,
)
from django_textclass.api.links import LinkedSchema
from django_textclass.api.serializers import ParametersSerializer
from django_textclass.api.views import TextClassAPIView
from django_textclass.api.waiting import can_wait, wait_until_finished
from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError
from django_textclass.models import ClassificationRequest, Status, text_hash
from django_textclass.services import waiting

#: Failure codes answered with the upstream's own status; any other failure is a 502.
PASSED_THROUGH = {"http_400": 400, "http_413": 413, "http_422": 422}
REQUESTS_HEADER = "X-Textclass-Requests"


class BearerTokenAuthentication(TokenAuthentication):
    """DRF token authentication with the ``Authorization: Bearer <token>`` keyword.

    The Inference API's clients send ``Bearer``; DRF's stock class expects ``Token``.
    Needs ``rest_framework.authtoken`` in ``INSTALLED_APPS`` (check ``textclass.W011``).
    """

    keyword = "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents :class:`BearerTokenAuthentication` as an HTTP bearer scheme."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        """``{"type": "http", "scheme": "bearer"}``."""
        return {"type": "http", "scheme": "bearer", "description": "A DRF auth token."}


@extend_schema_field(inference_schema.INPUTS)
class InputsField(serializers.Field):
    """``inputs``: one string, or a list of them (at most ``API_MAX_BATCH``)."""

    default_error_messages = {
        "type": "Must be a string or a list of strings.",
        "empty": "Must not be an empty list.",
        "too_many": "Has {count} items; the maximum is {limit}.",
    }

    def to_internal_value(self, data):
        """Validate every text with the pipeline's rules; list errors carry the index."""
        if isinstance(data, str):
            return TextField().run_validation(data)
        if not isinstance(data, list):
            self.fail("type")
        if not data:
            self.fail("empty")
        limit = app_settings.API_MAX_BATCH
        if len(data) > limit:
            self.fail("too_many", count=len(data), limit=limit)
        errors, texts = {}, []
        for index, item in enumerate(data):
            try:
                texts.append(TextField().run_validation(item))
            except ValidationError as exc:
                errors[index] = exc.detail
        if errors:
            raise ValidationError(errors)
        return texts


class OptionsSerializer(StrictSerializer):
    """The legacy ``options`` object (the headers replaced it; both work)."""

    use_cache = StrictBooleanField(required=False)
    wait_for_model = StrictBooleanField(required=False)


class InferenceSerializer(StrictSerializer):
    """The Inference API's text-classification request body."""

    inputs = InputsField(help_text="A string, or a list of strings.")
    parameters = ParametersSerializer(required=False)
    options = OptionsSerializer(required=False)


@inference_schema.inference_view(InferenceSerializer)
class InferenceView(TextClassAPIView, APIView):
    """The Inference API's text-classification call, answered by the site's workers."""

    renderer_classes = [JSONRenderer]
    throttled_actions = True
    schema = LinkedSchema()  # the link to the stored requests (api/links.py)

    def get_authenticators(self):
        """``Bearer`` tokens first (so a missing token answers 401), then the project's."""
        classes = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
        if apps.is_installed("rest_framework.authtoken"):
            classes.insert(0, BearerTokenAuthentication)
        return [cls() for cls in classes]

    def post(self, request, model_id):
        """Classify ``inputs`` with ``model_id``; see the module docstring for the answers."""
        try:
            ModelField().run_validation(model_id)
        except ValidationError as exc:
            raise ValidationError({"model_id": exc.detail}) from None
        body = InferenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        options = data.get("options") or {}
        use_cache = _header_flag(request, "x-use-cache", options.get("use_cache", True))
        wait_for_model = _header_flag(
            request, "x-wait-for-model", options.get("wait_for_model", False)
        )
        parameters = data.get("parameters") or {}
        single = isinstance(data["inputs"], str)
        texts = [data["inputs"]] if single else data["inputs"]
        rows = _requests_for(request.user, texts, model_id, parameters, use_cache)
        timeout = (
            app_settings.INFERENCE_WAIT_FOR_MODEL_SECONDS
            if wait_for_model
            else app_settings.INFERENCE_WAIT_SECONDS
        )
        pks = list({row.pk for row in rows})
        if getattr(request._request, DEFERRED_WAIT, False) and can_wait():
            # Served by as_async_view(): it waits without a thread, then calls finish().
            def finish():
                try:
                    response = _answer(model_id, rows)
                except Exception as exc:  # noqa: BLE001 - answered as dispatch() would
                    response = self.handle_exception(exc)
                return self.finalize_response(request, response)

            return _Waiting(pks, timeout, finish)
        wait_until_finished(pks, timeout)
        return _answer(model_id, rows)

    def handle_exception(self, exc):
        """Every error body as the API's ``{"error": "..."}``."""
        response = super().handle_exception(exc)
        response.data = {"error": _flatten(response.data)}
        return response


#: Set on the Django request by :func:`as_async_view`: the view returns a :class:`_Waiting`.
DEFERRED_WAIT = "textclass_deferred_wait"


class _Waiting(Response):
    """What :class:`InferenceView` returns to :func:`as_async_view` instead of waiting."""

    def __init__(self, pks, timeout, finish):
        super().__init__()
        self.pks, self.timeout, self.finish = pks, timeout, finish


def as_async_view():
    """:class:`InferenceView` as an async Django view, as the API's URLs mount it.

    Authentication, throttling, validation and storing run in the view as usual; the
    wait for the worker is then a coroutine woken by the worker's commit
    (:func:`django_textclass.services.waiting.await_finished`): under ASGI it holds no
    thread, and under WSGI it behaves as the synchronous view. The answer is then built
    as the view would have.
    """
    view = InferenceView.as_view()

    async def inference(request, model_id):
        setattr(request, DEFERRED_WAIT, True)
        # Under ASGI the request's thread gives its connection back (to the pool) after each
        # step, so a waiting request holds no connection either (docs/installation.md).
        release = isinstance(request, ASGIRequest)
        # Under ASGI the steps run in the loop's thread pool, not in a thread of the
        # request's own (see django_textclass.api.asgi); under WSGI in the request's thread.
        step = sync_to_async(_step, thread_sensitive=not release)
        response = await step(release, view, request, model_id=model_id)
        if not isinstance(response, _Waiting):
            return response

        async def read(function, *args):
            return await step(release, function, *args)

        await waiting.await_finished(response.pks, response.timeout, read)
        return await step(release, response.finish)

    # What DRF's as_view() gives its function, for the schema generator and middleware.
    inference.cls, inference.initkwargs = view.cls, view.initkwargs
    inference.textclass_waits = True  # served without a thread of its own (api/asgi.py)
    inference.__doc__ = InferenceView.__doc__
    return csrf_exempt(inference)


def _step(release, function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    finally:
        if release:
            connections.close_all()


def _answer(model_id, rows):
    """The API's answer for ``rows`` as they are stored now (final, or a 503 to call again)."""
    fresh = ClassificationRequest.objects.prefetch_related("scores").in_bulk(
        [row.pk for row in rows]
    )
    rows = [fresh[row.pk] for row in rows]
    headers = {REQUESTS_HEADER: ",".join(str(row.uuid) for row in rows)}
    if not all(row.is_finished for row in rows):
        estimate = _estimated_time(rows)
        headers["Retry-After"] = str(max(1, round(estimate)))
        return Response(
            {"error": f"Model {model_id} is currently loading", "estimated_time": estimate},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=headers,
        )
    failed = next((row for row in rows if row.status != Status.SUCCEEDED), None)
    if failed is not None:
        return _failure(failed, headers)
    return Response([row.labels for row in rows], headers=headers)


def _header_flag(request, name, default):
    value = request.headers.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValidationError({name: ["Must be true or false."]})


def _requests_for(user, texts, model, parameters, use_cache):
    """One stored request per input: in-flight identical ones are reused, the rest submitted.

    A client that got a 503 calls again with the same inputs (that is what the API
    asks for). Waiting on the requests still in flight, rather than storing new
    ones each time, keeps the retry loop from piling up calls to the backend.
    ``model`` is a Hub id or a key of ``TEXTCLASS["MODELS"]``.
    """
    owner = user if user.is_authenticated else None
    try:
        target = catalog.resolve(
            model,
            function_to_apply=parameters.get("function_to_apply"),
            top_k=parameters.get("top_k"),
        )
    except InvalidInputError as exc:  # the serializer checks first; this is the net
        raise ValidationError({exc.field: [exc.reason]}) from None
    chosen = target.parameters
    reuse = {}
    if use_cache and owner is not None:
        in_flight = ClassificationRequest.objects.filter(
            owner=owner,
            status__in=[Status.PENDING, Status.RUNNING],
            backend=target.backend,
            model_id=target.model_id,
            model_key=target.key,
            revision=target.revision,
            function_to_apply=chosen.function_to_apply or "",
            top_k=chosen.top_k,
            use_cache=True,
            text_hash__in={text_hash(text) for text in texts},
        ).order_by("created_at")
        for row in in_flight:
            reuse.setdefault(row.text, row)
    missing = [text for text in texts if text not in reuse]
    if missing:
        try:
            created = services.submit(
                missing,
                model,
                function_to_apply=chosen.function_to_apply,
                top_k=chosen.top_k,
                owner=owner,
                use_cache=use_cache,
            )
        except InvalidInputError as exc:  # the serializer checks first; this is the net
            raise ValidationError({exc.field: [exc.reason]}) from None
        fresh = iter(created)
        return [reuse[text] if text in reuse else next(fresh) for text in texts]
    return [reuse[text] for text in texts]


def _estimated_time(rows):
    """Seconds until the latest scheduled attempt among unfinished rows (at least 1)."""
    now = timezone.now()
    waits = [
        (row.next_attempt_at - now).total_seconds()
        for row in rows
        if not row.is_finished and row.next_attempt_at is not None
    ]
    return round(max([1.0, *waits]), 1)


def _failure(row, headers):
    if row.status == Status.CANCELLED:
        return Response(
            {"error": "The request was cancelled."},
            status=status.HTTP_409_CONFLICT,
            headers=headers,
        )
    code = PASSED_THROUGH.get(row.error_code, status.HTTP_502_BAD_GATEWAY)
    return Response(
        {"error": f"Classification failed ({row.error_code}): {row.error_message}"},
        status=code,
        headers=headers,
    )


def _flatten(detail):
    """DRF's error detail (a string, list or per-field dict) as one line of text."""
    if isinstance(detail, dict):
        if set(detail) == {"detail"}:
            return _flatten(detail["detail"])
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)
