"""The classification endpoints: submit, read, list, retry, cancel.

Every state change goes through :mod:`django_textclass.services`; these views
validate, call it, and describe the result. Querysets are always scoped to the
caller (:func:`~django_textclass.api.permissions.scope_to_user`), so another
user's request id answers 404.
"""

from django.db import transaction
from django.http import Http404
from rest_framework import mixins, routers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings

from django_textclass import services
from django_textclass.api import idempotency, schema
from django_textclass.api.exceptions import Conflict, printable
from django_textclass.api.filters import HistoryFilter, HistoryFilterSet
from django_textclass.api.links import LinkedSchema
from django_textclass.api.pagination import HistoryPagination
from django_textclass.api.parsers import BoundedJSONParser
from django_textclass.api.permissions import (
    classes_from_settings,
    get_permissions,
    scope_to_user,
)
from django_textclass.api.serializers import (
    ClassificationDetailSerializer,
    ClassificationSerializer,
    SubmitSerializer,
)
from django_textclass.api.throttling import SubmitRateThrottle
from django_textclass.api.waiting import wait_until_finished
from django_textclass.exceptions import InvalidInputError
from django_textclass.models import ClassificationRequest

#: Actions that cost a backend call, and so count against the submit rate.
THROTTLED_ACTIONS = ("create", "retry")


class TextClassAPIView:
    """What every endpoint of the app shares: parser, permissions, throttles.

    Subclasses list their throttled actions in ``throttled_actions`` (or set it
    to True for all of them).
    """

    parser_classes = [BoundedJSONParser]
    throttled_actions = ()

    def get_permissions(self):
        """The project's default permissions, or ``TEXTCLASS["API_PERMISSION_CLASSES"]``."""
        return get_permissions()

    def perform_authentication(self, request):
        """Authenticate as DRF does, after refusing credentials no store can look up.

        A NUL in ``Authorization`` would reach the token table's query, and PostgreSQL
        refuses NUL before comparing anything: the request would end in a 500, not in
        the 401/403 of any other wrong token.
        """
        refuse_unusable_credentials(request)
        super().perform_authentication(request)

    def handle_exception(self, exc):
        """DRF's error answer, its strings made encodable (:func:`printable`)."""
        response = super().handle_exception(exc)
        response.data = printable(response.data)
        return response

    def get_throttles(self):
        """The project's throttles, plus the submit throttle where a call costs a backend call.

        The project's are ``REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]`` (or
        ``TEXTCLASS["API_THROTTLE_CLASSES"]``), on every action, as in any DRF view.
        """
        throttles = [cls() for cls in classes_from_settings("API_THROTTLE_CLASSES")]
        name = getattr(self, "action", None)
        if self.throttled_actions is True or name in self.throttled_actions:
            throttles.append(SubmitRateThrottle())
        return throttles


class APIRootView(TextClassAPIView, routers.APIRootView):
    """``GET /api/``: a link to each endpoint that takes no argument (DRF's API root).

    Under the API's own permissions and throttles, like every other endpoint.
    """


@schema.classification_viewset
class ClassificationViewSet(
    TextClassAPIView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Classification requests of the caller (all of them for staff)."""

    schema = LinkedSchema()  # the OpenAPI links between the actions (api/links.py)
    serializer_class = ClassificationSerializer
    pagination_class = HistoryPagination
    filter_backends = [HistoryFilter]
    filterset_class = HistoryFilterSet
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    # Anything up to the next slash is an id: a malformed one gets the JSON 404 of an
    # unknown one (the router's own pattern would leave ids with a dot to Django's 404).
    lookup_value_regex = "[^/]+"
    throttled_actions = THROTTLED_ACTIONS

    @classmethod
    def as_view(cls, actions=None, **initkwargs):
        """The view of ``actions``; the one that submits opts out of ``ATOMIC_REQUESTS``.

        A submission that waits must commit its rows before it waits (see ``urls.py``).
        """
        view = super().as_view(actions, **initkwargs)
        if actions and "create" in actions.values():
            view = transaction.non_atomic_requests(view)
        return view

    def get_queryset(self):
        """The caller's requests, with what the serializer reads loaded up front."""
        queryset = ClassificationRequest.objects.select_related(
            "owner", "content_type"
        ).prefetch_related("scores")
        return scope_to_user(self.request, queryset)

    def get_serializer_class(self):
        """One request's own URL also shows its waits and retries."""
        if self.action == "retrieve":
            return ClassificationDetailSerializer
        return super().get_serializer_class()

    def get_object(self):
        """The caller's request by its public id; 404 alike for unknown, malformed and others'."""
        try:
            return super().get_object()
        except Http404:
            raise NotFound("No such classification request.") from None

    def create(self, request, *args, **kwargs):
        """Store one text or a batch; 202 (or 200 once ready, with ``wait``)."""
        serializer = SubmitSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        kwargs = serializer.submit_kwargs()
        single = isinstance(kwargs["texts"], str)

        def submit():
            try:
                rows = services.submit(owner=_owner(request), **kwargs)
            except InvalidInputError as exc:  # the serializer checks first; this is the net
                raise _field_error(exc) from None
            return [rows] if single else rows

        key = idempotency.key_from(request)
        replayed = False
        if key is None:
            rows = submit()
        else:
            rows, replayed = idempotency.submit_once(request.user, key, request.data, submit)
        wait = serializer.validated_data["wait"]
        ready = wait_until_finished([row.pk for row in rows], wait)
        if wait or replayed:
            # The worker may have moved them on, or they were read bare from an earlier
            # call. Otherwise the rows just stored are the answer as they are: reading
            # them back would cost two statements per submit and show nothing new.
            rows = self._fresh(rows)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        code = status.HTTP_200_OK if ready else status.HTTP_202_ACCEPTED
        if single:
            data = self.get_serializer(rows[0]).data
            headers["Location"] = data["url"]
            return Response(data, status=code, headers=headers)
        return Response(
            {"results": self.get_serializer(rows, many=True).data}, status=code, headers=headers
        )

    @action(detail=True, methods=["post"])
    def retry(self, request, *args, **kwargs):
        """Send a failed or cancelled request again; 409 for any other status."""
        row = self.get_object()
        if not services.retry(row):
            row.refresh_from_db(fields=["status"])
            raise Conflict(
                f"Only failed or cancelled requests can be retried; this one is {row.status}.",
                code="not_retryable",
                current_status=row.status,
            )
        data = self.get_serializer(self._fresh([row])[0]).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        """Cancel a pending request; 409 for any other status."""
        row = self.get_object()
        if not services.cancel(row):
            row.refresh_from_db(fields=["status"])
            raise Conflict(
                f"Only pending requests can be cancelled; this one is {row.status}.",
                code="not_cancellable",
                current_status=row.status,
            )
        return Response(self.get_serializer(self._fresh([row])[0]).data)

    def _fresh(self, rows):
        """``rows`` read again (status, scores), in the same order."""
        by_pk = (
            ClassificationRequest.objects.select_related("owner", "content_type")
            .prefetch_related("scores")
            .in_bulk([row.pk for row in rows])
        )
        return [by_pk[row.pk] for row in rows]


def refuse_unusable_credentials(request):
    """Raise AuthenticationFailed (401/403) for an ``Authorization`` header holding a NUL.

    Characters HTTP cannot carry in a header (beyond Latin-1, which only a test client
    can send) are refused too. The request is left anonymous, so nothing that reads
    ``request.user`` afterwards tries the header again.
    """
    header = request.META.get("HTTP_AUTHORIZATION")
    if not isinstance(header, str):
        return
    if "\x00" in header or (not header.isascii() and not _latin1(header)):
        request.user = (
            api_settings.UNAUTHENTICATED_USER() if api_settings.UNAUTHENTICATED_USER else None
        )
        request.auth = None
        raise AuthenticationFailed(
            "Invalid Authorization header: it must not contain NUL or non-Latin-1 characters."
        )


def _latin1(text):
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _owner(request):
    return request.user if request.user.is_authenticated else None


def _field_error(exc):
    return ValidationError({exc.field: [exc.reason]})
