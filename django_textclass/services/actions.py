"""What is done to stored requests after their submission: cancel, retry, reclassify, rerun.

One request (the REST API, a site's code) or a queryset (the admin's actions, the
management commands); every change is guarded by the status it starts from, so a request
that moved on meanwhile is left as it is.
"""

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from django_textclass.models import ClassificationRequest, Status
from django_textclass.services import chunks, dispatch, waiting


def cancel(request):
    """Cancel a pending request. Returns True if it was pending (now cancelled)."""
    updated = ClassificationRequest.objects.filter(pk=request.pk, status=Status.PENDING).update(
        status=Status.CANCELLED,
        finished_at=timezone.now(),
        next_attempt_at=None,
    )
    if updated:
        waiting.announce([request.pk])  # after the UPDATE: a waiter woken reads it done
    return bool(updated)


def retry(request):
    """Send a failed or cancelled request again, with a fresh attempt budget.

    Returns True if the request was failed or cancelled (now pending, or, for a
    text split into chunks, waiting for its failed chunks to be sent again).
    """
    return bool(retry_many(ClassificationRequest.objects.filter(pk=request.pk)))


# --- bulk operations (admin actions) ------------------------------------------------------

#: Rows per UPDATE / INSERT when a bulk operation works through a list of ids.
BULK_CHUNK = 500
RETRYABLE_STATUSES = (Status.FAILED, Status.CANCELLED)


def _selected(queryset):
    """``queryset``'s rows as a plain pk filter: no ordering, slicing or DISTINCT to trip on."""
    return ClassificationRequest.objects.filter(pk__in=queryset.order_by().values("pk"))


def _chunks(ids):
    for start in range(0, len(ids), BULK_CHUNK):
        yield ids[start : start + BULK_CHUNK]


def cancel_many(queryset):
    """Cancel the pending requests among ``queryset`` (one UPDATE). Returns how many.

    Requests in any other status are left as they are.
    """
    cancelled = (
        _selected(queryset)
        .filter(status=Status.PENDING)
        .update(
            status=Status.CANCELLED,
            finished_at=timezone.now(),
            next_attempt_at=None,
        )
    )
    if cancelled:
        waiting.announce_everyone()  # the ids are not read back: every waiter looks
    return cancelled


def retry_many(queryset):
    """Send the failed and cancelled requests among ``queryset`` again, like :func:`retry`.

    The rows are locked, updated a chunk at a time and woken once the transaction
    commits. Requests in any other status are left as they are. A text split into
    chunks is never sent whole: its failed and cancelled chunks are sent again and
    it waits for them, as it did when it was submitted.

    Returns:
        The number of requests sent again (a split text counts once).
    """
    with transaction.atomic():
        # Locked: every row read here is updated below, so the count is len(rows).
        rows = list(
            _selected(queryset)
            .filter(status__in=RETRYABLE_STATUSES)
            .select_for_update()
            .order_by("pk")
            .annotate(has_chunks=_has_chunks())
            .values_list("pk", "has_chunks")
        )
        parents = [pk for pk, has_chunks in rows if has_chunks]
        chunk_ids = list(
            ClassificationRequest.objects.filter(
                parent_id__in=parents, status__in=RETRYABLE_STATUSES
            ).values_list("pk", flat=True)
        )
        ids = [pk for pk, has_chunks in rows if not has_chunks] + chunk_ids
        now = timezone.now()
        for chunk in _chunks(ids):
            ClassificationRequest.objects.filter(
                pk__in=chunk, status__in=RETRYABLE_STATUSES
            ).update(
                status=Status.PENDING,
                attempts=0,
                error_code="",
                error_message="",
                started_at=None,
                finished_at=None,
                next_attempt_at=now,
            )
        # Back to waiting for its chunks.
        ClassificationRequest.objects.filter(pk__in=parents, status__in=RETRYABLE_STATUSES).update(
            attempts=0, error_code="", error_message="", **chunks.waiting(now)
        )
        dispatch.on_commit(ids)
    return len(rows)


#: The fields a copy of a request takes from its original (:func:`reclassify`, :func:`rerun`).
COPIED_FIELDS = (
    "owner_id",
    "model_id",
    "model_key",
    "revision",
    "function_to_apply",
    "top_k",
    "text",
    "text_hash",
    "backend",
    "content_type_id",
    "object_id",
    "source_field",
    "source_hash",
    "source_length",
    "long_text_policy",
    "chunk_index",
)


def reclassify(queryset):
    """Submit the texts of ``queryset`` again: new requests that bypass every cache.

    Each new request has the same text, model, key, revision, parameters, backend, owner
    and source as its original, and ``use_cache=False`` (no stored result is reused, and
    the API is asked not to answer from its cache). The originals are not changed.

    A text split into chunks is copied with its chunks: the copy waits for the new
    chunks, which are the requests sent. Chunks selected on their own are skipped.

    Returns:
        The number of requests created (a split text counts once); their wake-ups go
        out after commit.
    """
    return _copy_requests(queryset, use_cache=False)


def rerun(queryset, target):
    """Submit the texts of ``queryset`` again with ``target``: a key's current model.

    Each new request keeps its original's text, owner, source and long-text policy (a
    split text is copied with its chunks, as :func:`reclassify` does) and takes the key,
    backend, model, revision and parameters of ``target``
    (:class:`~django_textclass.catalog.Target`). The stored-result cache applies as for
    any request: an answer is reused only if it came from the same backend, model,
    revision and parameters. The originals are not changed (``textclass_reclassify``).

    Returns:
        The number of requests created (a split text counts once).
    """
    parameters = target.parameters
    return _copy_requests(
        queryset,
        use_cache=True,
        replace={
            "model_key": target.key,
            "backend": target.backend,
            "model_id": target.model_id,
            "revision": target.revision,
            "function_to_apply": parameters.function_to_apply or "",
            "top_k": parameters.top_k,
        },
    )


def _copy_requests(queryset, *, use_cache, replace=None):
    """Copy the top-level requests of ``queryset`` (split texts with their chunks).

    Returns:
        How many top-level copies were created; their wake-ups go out after commit.
    """
    replace = replace or {}
    fields = COPIED_FIELDS
    created, wake = 0, []
    with transaction.atomic():
        ids = list(
            _selected(queryset)
            .filter(parent__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for chunk in _chunks(ids):
            now = timezone.now()
            originals = list(
                ClassificationRequest.objects.filter(pk__in=chunk)
                .order_by("pk")
                .annotate(has_chunks=_has_chunks())
                .values("pk", "has_chunks", *fields)
            )
            copies = ClassificationRequest.objects.bulk_create(
                _copy(values, fields, now, replace, use_cache, waiting=values["has_chunks"])
                for values in originals
            )
            created += len(copies)
            parents = {
                o["pk"]: c.pk for o, c in zip(originals, copies, strict=True) if o["has_chunks"]
            }
            wake.extend(c.pk for o, c in zip(originals, copies, strict=True) if not o["has_chunks"])
            old_chunks = (
                ClassificationRequest.objects.filter(parent_id__in=parents)
                .order_by("parent_id", "chunk_index")
                .values("parent_id", *fields)
            )
            children = ClassificationRequest.objects.bulk_create(
                ClassificationRequest(
                    **_copy_values(values, fields, replace),
                    parent_id=parents[values["parent_id"]],
                    use_cache=use_cache,
                    created_at=now,
                    next_attempt_at=now,
                )
                for values in old_chunks
            )
            wake.extend(child.pk for child in children)
        dispatch.on_commit(wake)
    return created


def _has_chunks():
    """An annotation: whether a request is a split text (it has chunks)."""
    return Exists(ClassificationRequest.objects.filter(parent_id=OuterRef("pk")))


def _copy_values(values, fields, replace):
    return {field: replace.get(field, values[field]) for field in fields}


def _copy(values, fields, now, replace, use_cache, *, waiting):
    """A fresh copy of a request; a split text starts waiting for its chunks."""
    if waiting:
        return ClassificationRequest(
            **_copy_values(values, fields, replace),
            use_cache=use_cache,
            created_at=now,
            **chunks.waiting(now),
        )
    return ClassificationRequest(
        **_copy_values(values, fields, replace),
        use_cache=use_cache,
        created_at=now,
        next_attempt_at=now,
    )
