"""Keeping registered content classified: submit an object's changed texts, forget a deleted one.

Called by the receivers in :mod:`django_textclass.content.registry` (inside the save's or
delete's transaction) and by ``textclass_backfill``. Every write goes through
:mod:`django_textclass.services`.
"""

import logging
from collections import defaultdict

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from django_textclass import services
from django_textclass.backends import backend_config
from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError
from django_textclass.models import ClassificationRequest, Status, text_hash
from django_textclass.models.querysets import model_name
from django_textclass.services import chunks
from django_textclass.types import Parameters

logger = logging.getLogger("django_textclass.content")


def source_text(obj, field):
    """The text of ``obj.field`` if it is a non-blank string, else None."""
    value = getattr(obj, field, None)
    return value if isinstance(value, str) and value.strip() else None


def latest_requests(content_type, object_ids, fields, model_ids):
    """The newest request per (object, field, model), in ONE query.

    A model is named as the registration names it: a key of ``TEXTCLASS["MODELS"]`` finds
    the requests submitted with that key (whatever model or revision it had then), a Hub id
    the requests submitted with that id and no key.

    Returns:
        ``{(object_id, field, model): {"pk", "status", "hash"}}`` where ``hash`` is
        the source text's hash (the request's own text hash for requests stored
        without a long-text policy).
    """
    rows = (
        ClassificationRequest.objects.named(model_ids)
        .filter(
            content_type=content_type,
            object_id__in=[str(pk) for pk in object_ids],
            source_field__in=list(fields),
            parent__isnull=True,
        )
        .annotate(textclass_name=model_name())
        .annotate(
            textclass_rank=Window(
                RowNumber(),
                partition_by=[F("object_id"), F("source_field"), F("textclass_name")],
                order_by=[F("created_at").desc(), F("pk").desc()],
            )
        )
        .filter(textclass_rank=1)
        .values(
            "pk",
            "object_id",
            "source_field",
            "textclass_name",
            "status",
            "source_hash",
            "text_hash",
        )
    )
    return {
        (row["object_id"], row["source_field"], row["textclass_name"]): {
            "pk": row["pk"],
            "status": row["status"],
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
    texts = {
        field: text
        for field in registration.fields
        if (text := source_text(obj, field)) is not None
    }
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
                created_requests.append(
                    services.submit(
                        text,
                        model=model_id,
                        source=obj,
                        source_field=field,
                        long_text=policy,
                        **registration.options(),
                    )
                )
            except InvalidInputError as exc:
                # The message names lengths, never the text itself.
                logger.warning(
                    "Not classifying %s %s field %r: %s", registration.label, object_id, field, exc
                )
                break
    return created_requests


def classify_objects(
    objects, registration, *, fields=None, model_ids=None, only_missing=False, dry_run=False
):
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
                current = (
                    previous is not None
                    and previous["hash"] == digest
                    and (previous["status"] not in (Status.FAILED, Status.CANCELLED))
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
                [services.Item(text, obj, field, plan) for obj, field, text, plan, _ in items],
                model_id,
                long_text=policy,
                **options,
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
    parent_ids = list(
        chunks.waiting_parents()
        .filter(content_type=content_type, object_id=str(pk))
        .values_list("pk", flat=True)
    )
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
