"""Registered content: classify objects when their text changes, read their results.

Write side (called by the receivers in :mod:`django_textclass.registry` and the backfill command):
:func:`classify_object`, :func:`classify_objects`, :func:`forget_object`.

Read side, for your views and templates:

* :func:`latest_results` / :class:`ClassificationResults` (a descriptor you put on
  your model): the latest succeeded result per model for one object;
* :func:`with_label` / :class:`ClassifiedQuerySet`: objects whose latest result for
  a model has a given top label with at least a given score, in one SQL query.

A source object is linked to its requests by ``content_type`` + ``object_id``
(the primary key as a string) + ``source_field``. Chunks of a split text are not
linked (only their parent is), so every query here sees one request per submission.
"""

import logging
from collections import defaultdict

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import CharField, Exists, F, OuterRef, Subquery, Window
from django.db.models.functions import Cast, RowNumber

from django_textclass import services
from django_textclass.backends import backend_config
from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError
from django_textclass.models import ClassificationRequest, Status, text_hash
from django_textclass.services import chunks
from django_textclass.types import Parameters

logger = logging.getLogger("django_textclass.content")


def source_text(obj, field):
    """The text of ``obj.field`` if it is a non-blank string, else None."""
    value = getattr(obj, field, None)
    return value if isinstance(value, str) and value.strip() else None


def latest_requests(content_type, object_ids, fields, model_ids):
    """The newest request per (object, field, model), in ONE query.

    Returns:
        ``{(object_id, field, model_id): {"pk", "status", "hash"}}`` where ``hash`` is
        the source text's hash (the request's own text hash for requests stored
        without a long-text policy).
    """
    rows = (
        ClassificationRequest.objects.filter(
            content_type=content_type, object_id__in=[str(pk) for pk in object_ids],
            source_field__in=list(fields), model_id__in=list(model_ids), parent__isnull=True,
        )
        .annotate(textclass_rank=Window(
            RowNumber(), partition_by=[F("object_id"), F("source_field"), F("model_id")],
            order_by=[F("created_at").desc(), F("pk").desc()],
        ))
        .filter(textclass_rank=1)
        .values("pk", "object_id", "source_field", "model_id", "status", "source_hash",
                "text_hash")
    )
    return {
        (row["object_id"], row["source_field"], row["model_id"]): {
            "pk": row["pk"], "status": row["status"],
            "hash": row["source_hash"] or row["text_hash"],
        }
        for row in rows
    }


def classify_object(obj, registration, *, created=False):
    """Submit the registered fields of ``obj`` whose text changed, for each model.

    Runs in the caller's transaction (the save's): a rollback leaves no request and
    sends nothing; wake-ups go out after commit and a broker that is down never
    raises here. A field whose newest request (same model) has the same source
    text is skipped; a pending request for an older text of the same field and
    model is cancelled. Texts a ``reject`` policy refuses are logged and skipped.

    Args:
        obj: a saved instance of ``registration.model``.
        registration: its :class:`~django_textclass.registry.Registration`.
        created: True for a new object (no earlier request can exist: no query).

    Returns:
        The requests created.
    """
    if not registration.wants(obj):
        return []
    texts = {field: text for field in registration.fields
             if (text := source_text(obj, field)) is not None}
    if not texts:
        return []
    model_ids = registration.model_ids
    content_type = ContentType.objects.get_for_model(obj)
    latest = {} if created else latest_requests(content_type, [obj.pk], texts, model_ids)
    policy = registration.policy
    object_id = str(obj.pk)
    created_requests = []
    for field, text in texts.items():
        digest = text_hash(text)
        for model_id in model_ids:
            previous = latest.get((object_id, field, model_id))
            if previous is not None and previous["hash"] == digest:
                continue
            if previous is not None and previous["status"] == Status.PENDING:
                services.cancel(ClassificationRequest(pk=previous["pk"]))
            try:
                created_requests.append(services.submit(
                    text, model=model_id, source=obj, source_field=field, long_text=policy,
                    **registration.options(),
                ))
            except InvalidInputError as exc:
                # The message names lengths, never the text itself.
                logger.warning("Not classifying %s %s field %r: %s", registration.label,
                               object_id, field, exc)
                break
    return created_requests


def classify_objects(objects, registration, *, fields=None, model_ids=None, only_missing=False,
                     dry_run=False):
    """Backfill: submit the changed (or missing) fields of many objects in bulk.

    One query reads the newest request of every (object, field, model); the new
    requests are inserted with one ``bulk_create`` per model, in one transaction,
    and their wake-ups are published after it commits.

    Args:
        objects: instances of ``registration.model`` (one batch).
        registration: the registration.
        fields: the registered fields to consider (default: all).
        model_ids: the models to consider (default: the registration's).
        only_missing: submit only (object, field, model) that never had a request.
        dry_run: count, write nothing.

    Returns:
        ``{"created": n, "unchanged": n, "skipped": n, "rejected": n}``; ``skipped``
        counts objects the condition excludes or with no text.
    """
    fields = tuple(fields or registration.fields)
    model_ids = tuple(model_ids or registration.model_ids)
    counts = {"created": 0, "unchanged": 0, "skipped": 0, "rejected": 0}
    objects = list(objects)
    if not objects:
        return counts
    content_type = ContentType.objects.get_for_model(registration.model)
    latest = latest_requests(content_type, [obj.pk for obj in objects], fields, model_ids)
    policy = registration.policy
    options = registration.options()
    Parameters(options["function_to_apply"], options["top_k"])  # bad parameters raise here
    alias = options["backend"] or app_settings.DEFAULT_BACKEND
    backend_config(alias)  # a misconfigured alias raises before anything is counted
    todo = defaultdict(list)  # model_id -> [(obj, field, plan, cancel_pk)]
    for obj in objects:
        texts = {f: t for f in fields if (t := source_text(obj, f)) is not None}
        if not texts or not registration.wants(obj):
            counts["skipped"] += 1
            continue
        for field, text in texts.items():
            digest = text_hash(text)
            try:
                plan = policy.prepare(text)
            except InvalidInputError:
                counts["rejected"] += len(model_ids)
                continue
            for model_id in model_ids:
                previous = latest.get((str(obj.pk), field, model_id))
                current = previous is not None and previous["hash"] == digest and (
                    previous["status"] not in (Status.FAILED, Status.CANCELLED)
                )
                if current or (only_missing and previous is not None):
                    counts["unchanged"] += 1
                    continue
                pending = previous is not None and previous["status"] == Status.PENDING
                stale = previous["pk"] if pending else None
                todo[model_id].append((obj, field, text, plan, stale))
                counts["created"] += 1
    if dry_run or not todo:
        return counts
    with transaction.atomic():
        for model_id, items in todo.items():
            for *_, stale in items:
                if stale is not None:
                    services.cancel(ClassificationRequest(pk=stale))
            services.submit_many(
                [services.Item(text, obj, field) for obj, field, text, _, _ in items],
                model_id, long_text=policy, **options,
            )
    return counts


def forget_object(model, pk):
    """After a registered object is deleted: cancel its pending work.

    Pending requests are cancelled, split texts still waiting for chunks are
    cancelled with their chunks, and with ``DELETE_HISTORY_WITH_SOURCE`` every
    request of the object is deleted. Runs in the delete's transaction.

    Returns:
        ``{"cancelled": n, "deleted": n}``.
    """
    content_type = ContentType.objects.get_for_model(model)
    own = ClassificationRequest.objects.filter(content_type=content_type, object_id=str(pk))
    cancelled = 0
    for request in own.filter(status=Status.PENDING).only("pk"):
        cancelled += services.cancel(request)
    parent_ids = list(chunks.waiting_parents().filter(
        content_type=content_type, object_id=str(pk)).values_list("pk", flat=True))
    for chunk in ClassificationRequest.objects.filter(
        parent_id__in=parent_ids, status=Status.PENDING
    ).only("pk"):
        services.cancel(chunk)
    cancelled += len(chunks.settle_parents(parent_ids)) if parent_ids else 0
    deleted = 0
    if app_settings.DELETE_HISTORY_WITH_SOURCE:
        deleted = own.count()
        own.delete()
    return {"cancelled": cancelled, "deleted": deleted}


# --- reading results ---------------------------------------------------------------------


def latest_results(obj, model=None, *, field=None):
    """The latest succeeded result per model for ``obj`` (two queries: rows + scores).

    Args:
        obj: a model instance.
        model: a Hub model id: return only that model's request (or None).
        field: only results of this source field (default: any registered field).

    Returns:
        ``{model_id: ClassificationRequest}`` (scores prefetched), or one request /
        None when ``model`` is given.
    """
    requests = ClassificationRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk),
        status=Status.SUCCEEDED, parent__isnull=True,
    )
    if field is not None:
        requests = requests.filter(source_field=field)
    if model is not None:
        requests = requests.filter(model_id=model)
    latest = (
        requests.annotate(textclass_rank=Window(
            RowNumber(), partition_by=[F("model_id")],
            order_by=[F("created_at").desc(), F("pk").desc()],
        ))
        .filter(textclass_rank=1)
        .prefetch_related("scores")
    )
    by_model = {request.model_id: request for request in latest}
    return by_model.get(model) if model is not None else by_model


def with_label(queryset, model, label, min_score=0.0, *, field=None):
    """Filter ``queryset`` to objects whose latest result for ``model`` is ``label``.

    "Latest result" is the newest succeeded request of the object for that model
    (of ``field`` if given); it matches when its top label is ``label`` and its top
    score is at least ``min_score``. The whole filter is one SQL query: a
    correlated subquery picks the latest request per object (its primary key cast
    to text, the way ``object_id`` stores it) and ``EXISTS`` tests its label.

    Returns:
        A queryset of the same model.
    """
    content_type = ContentType.objects.get_for_model(queryset.model)
    latest = ClassificationRequest.objects.filter(
        content_type=content_type,
        object_id=Cast(OuterRef(OuterRef("pk")), output_field=CharField()),
        model_id=model, status=Status.SUCCEEDED, parent__isnull=True,
    )
    if field is not None:
        latest = latest.filter(source_field=field)
    latest = latest.order_by("-created_at", "-pk").values("pk")[:1]
    matching = ClassificationRequest.objects.filter(
        pk=Subquery(latest), top_label=label, top_score__gte=min_score
    )
    return queryset.filter(Exists(matching))


def _latest_of_each(queryset, model, field):
    """Succeeded requests of ``model`` for each row of ``queryset``, newest first."""
    latest = ClassificationRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(queryset.model),
        object_id=Cast(OuterRef("pk"), output_field=CharField()),
        model_id=model, status=Status.SUCCEEDED, parent__isnull=True,
    )
    if field is not None:
        latest = latest.filter(source_field=field)
    return latest.order_by("-created_at", "-pk")


def annotate_latest(queryset, model, *, field=None):
    """Add ``textclass_label`` and ``textclass_score``: the latest result for ``model``.

    For list pages: the values come in the same query as the objects (two
    correlated subqueries), None where there is no result yet.
    """
    latest = _latest_of_each(queryset, model, field)
    return queryset.annotate(
        textclass_label=Subquery(latest.values("top_label")[:1]),
        textclass_score=Subquery(latest.values("top_score")[:1]),
    )


class ClassifiedQuerySet(models.QuerySet):
    """A QuerySet with :meth:`with_label`; use ``ClassifiedQuerySet.as_manager()``."""

    def with_label(self, model, label, min_score=0.0, *, field=None):
        """See :func:`django_textclass.content.with_label`."""
        return with_label(self, model, label, min_score, field=field)

    def annotate_latest(self, model, *, field=None):
        """See :func:`django_textclass.content.annotate_latest`."""
        return annotate_latest(self, model, field=field)


class ResultsAccessor:
    """What ``obj.<name>`` returns for a :class:`ClassificationResults` descriptor."""

    def __init__(self, obj):
        self.obj = obj

    def all(self):
        """Every request of the object (any status, newest first)."""
        return ClassificationRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(self.obj), object_id=str(self.obj.pk),
            parent__isnull=True,
        )

    def latest(self, model=None, *, field=None):
        """See :func:`latest_results`."""
        return latest_results(self.obj, model, field=field)


class ClassificationResults:
    """A descriptor giving an object its results, with no schema change.

    Example::

        class Comment(models.Model):
            body = models.TextField()
            textclass = ClassificationResults()

        comment.textclass.latest()            # {model_id: request}
        comment.textclass.latest("owner/m")   # the request, or None
        comment.textclass.all()               # every request, newest first
    """

    def __get__(self, obj, owner=None):
        return self if obj is None else ResultsAccessor(obj)
