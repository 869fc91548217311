"""OpenAPI links: which answer gives the id that the next call takes.

A client reading ``/api/schema/`` (or a tool such as schemathesis, which chains calls by
them) learns that the ``id`` of a submitted request is what ``GET /classifications/{id}/``,
``.../cancel/`` and ``.../retry/`` take, and that the drop-in endpoint names its requests in
the ``X-Textclass-Requests`` header. drf-spectacular has no decorator for links, so the views
of the API carry :class:`LinkedSchema`: the project's ``DEFAULT_SCHEMA_CLASS`` (read when
the schema is built), adding :data:`LINKS` to each operation it describes. The links name
operations by id; :mod:`django_textclass.api.schema` pins those ids, so they hold wherever
the API is mounted.
"""

import functools

from drf_spectacular.openapi import AutoSchema
from rest_framework.schemas.inspectors import DefaultSchema, ViewInspector
from rest_framework.settings import api_settings

GET, CANCEL, RETRY = (
    "classifications_retrieve",
    "classifications_cancel_create",
    "classifications_retry_create",
)
#: The pinned operation ids, by view action (``post`` for the drop-in endpoint).
OPERATION_IDS = {
    "list": "classifications_list",
    "create": "classifications_create",
    "retrieve": GET,
    "cancel": CANCEL,
    "retry": RETRY,
    "inference": "models_create",
}

_NAMES = {GET: "GetClassification", CANCEL: "CancelClassification", RETRY: "RetryClassification"}


def _links(targets, expression, description):
    return {
        _NAMES[target]: {
            "operationId": target,
            "parameters": {"id": expression},
            "description": description,
        }
        for target in targets
    }


_SUBMITTED = _links(
    (GET, CANCEL, RETRY),
    "$response.body#/id",
    "The request of a single text (a batch lists them in `results`).",
)
_DROP_IN = _links(
    (GET,),
    "$response.header.X-Textclass-Requests",
    "The stored request of a single input (a list names one per input, comma-separated).",
)

#: ``{operation id: {status code: {link name: link}}}``.
LINKS = {
    OPERATION_IDS["list"]: {
        "200": _links(
            (GET, CANCEL, RETRY), "$response.body#/results/0/id", "The first request on the page."
        )
    },
    OPERATION_IDS["create"]: {"200": _SUBMITTED, "202": _SUBMITTED},
    GET: {"200": _links((CANCEL, RETRY), "$response.body#/id", "This request.")},
    CANCEL: {"200": _links((GET, RETRY), "$response.body#/id", "This request, now cancelled.")},
    RETRY: {"202": _links((GET, CANCEL), "$response.body#/id", "This request, pending again.")},
    OPERATION_IDS["inference"]: {code: _DROP_IN for code in ("200", "409", "502", "503")},
}


class LinksMixin:
    """Adds :data:`LINKS` to the responses of the operations it describes."""

    def get_operation(self, *args, **kwargs):
        """The operation as the schema class builds it, with its responses' links."""
        operation = super().get_operation(*args, **kwargs)
        if not operation:
            return operation
        responses = operation.get("responses", {})
        for code, links in LINKS.get(operation.get("operationId"), {}).items():
            if code in responses:
                responses[code]["links"] = {**responses[code].get("links", {}), **links}
        return operation


@functools.cache
def _linked(schema_class):
    return type(f"Linked{schema_class.__name__}", (LinksMixin, schema_class), {})


class LinkedSchema(DefaultSchema):
    """A view's ``schema``: ``DEFAULT_SCHEMA_CLASS`` with links, when it is drf-spectacular's.

    Read at each access, as DRF's own default is, so a project's subclass of
    drf-spectacular's ``AutoSchema`` still describes these views; any other schema class
    is used as it is.
    """

    def __get__(self, instance, owner):
        inspector_class = api_settings.DEFAULT_SCHEMA_CLASS
        set_on_instance = ViewInspector.__get__(self, instance, owner)  # view.schema = ...
        if set_on_instance is not self or not (
            isinstance(inspector_class, type) and issubclass(inspector_class, AutoSchema)
        ):
            return super().__get__(instance, owner)
        inspector = _linked(inspector_class)()
        inspector.view = instance
        return inspector
