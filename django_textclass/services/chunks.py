"""Texts split into chunks: storing a parent with its chunks, settling it once they are final.

A split parent goes through :func:`waiting` (set when it is stored, retried or
reclassified) and leaves it only through :func:`settle_parents`, inside the
transaction that made its last chunk final; the sweep's
:func:`settle_stuck_parents` is the net for chunks made final elsewhere.
"""

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from django_textclass import policies
from django_textclass.models import ClassificationRequest, ClassificationScore, Status, text_hash


def store(rows, plans):
    """Insert ``rows`` shaped by ``plans``; create the chunks of split texts.

    Args:
        rows: unsaved requests built from the source texts, one per plan.
        plans: the :class:`Plan` of each row.

    Returns:
        ``(rows, wake)``: the saved rows, and the rows a worker should be woken
        for (everything except split parents, which wait for their chunks).
    """
    for row, plan in zip(rows, plans, strict=True):
        row.source_hash = row.text_hash
        row.source_length = plan.source_length
        row.long_text_policy = plan.policy
        if plan.text != row.text:
            row.text = plan.text
            row.text_hash = text_hash(plan.text)
        if plan.chunks:
            for field, value in waiting(row.created_at).items():
                setattr(row, field, value)
    rows = ClassificationRequest.objects.bulk_create(rows)
    children = [
        ClassificationRequest(
            parent_id=row.pk,
            chunk_index=index,
            owner_id=row.owner_id,
            model_id=row.model_id,
            model_key=row.model_key,
            revision=row.revision,
            text=chunk,
            text_hash=text_hash(chunk),
            source_hash=text_hash(chunk),
            source_length=len(chunk),
            long_text_policy=plan.policy,
            function_to_apply=row.function_to_apply,
            top_k=row.top_k,
            use_cache=row.use_cache,
            backend=row.backend,
            created_at=row.created_at,
            next_attempt_at=row.created_at,
        )
        for row, plan in zip(rows, plans, strict=True)
        for index, chunk in enumerate(plan.chunks)
    ]
    children = ClassificationRequest.objects.bulk_create(children) if children else []
    wake = [row for row, plan in zip(rows, plans, strict=True) if not plan.chunks] + children
    return rows, wake


def waiting(now):
    """The fields of a split text waiting for its chunks, as from ``now``.

    ``running`` with no claim token and no lease: ``claim()`` takes only pending rows
    and the sweep requeues only running rows whose lease ran out, so no worker ever
    picks up a parent that only waits for its chunks. This and :func:`waiting_parents`
    are the one definition of that state.
    """
    return {
        "status": Status.RUNNING,
        "started_at": now,
        "finished_at": None,
        "next_attempt_at": None,
        "claim_token": None,
        "lease_expires_at": None,
    }


def waiting_parents():
    """Split parents still waiting for chunks (``running`` with no claim token)."""
    return ClassificationRequest.objects.filter(
        status=Status.RUNNING, claim_token__isnull=True, parent__isnull=True
    )


def settle_parents(parent_ids):
    """Finish the split parents among ``parent_ids`` whose chunks are all final.

    Each parent is locked first, so two workers finishing its last two chunks at
    the same time settle it exactly once (the second sees it no longer waiting).
    All chunks succeeded: the parent succeeds with the combined ranking. Any chunk
    failed: the parent fails with ``chunk_failed``. Otherwise (a chunk was
    cancelled): the parent is cancelled.

    Returns:
        ``[(parent_id, status), ...]`` for the parents settled here.
    """
    settled = []
    with transaction.atomic():
        for parent_id in sorted(set(parent_ids)):
            parent = waiting_parents().select_for_update().filter(pk=parent_id).first()
            if parent is None:
                continue
            chunks = list(
                ClassificationRequest.objects.filter(parent_id=parent_id)
                .order_by("chunk_index")
                .prefetch_related("scores")
            )
            if not chunks or any(not chunk.is_finished for chunk in chunks):
                continue
            now = timezone.now()
            update = {"finished_at": now, "lease_expires_at": None, "next_attempt_at": None}
            failed = [chunk for chunk in chunks if chunk.status == Status.FAILED]
            if all(chunk.status == Status.SUCCEEDED for chunk in chunks):
                how = "max" if parent.long_text_policy == "split_max" else "mean"
                ranking = policies.combine(
                    [[(s.label, s.score) for s in chunk.scores.all()] for chunk in chunks], how
                )
                ClassificationScore.objects.filter(request_id=parent_id).delete()
                ClassificationScore.objects.bulk_create(
                    ClassificationScore(request_id=parent_id, rank=rank, label=label, score=score)
                    for rank, (label, score) in enumerate(ranking)
                )
                update.update(
                    status=Status.SUCCEEDED,
                    top_label=ranking[0][0],
                    top_score=ranking[0][1],
                    error_code="",
                    error_message="",
                )
            elif failed:
                update.update(
                    status=Status.FAILED,
                    error_code="chunk_failed",
                    error_message=f"chunk {failed[0].chunk_index} of {len(chunks)} failed: "
                    f"{failed[0].error_code}",
                )
            else:
                update.update(status=Status.CANCELLED)
            waiting_parents().filter(pk=parent_id).update(**update)
            settled.append((parent_id, update["status"]))
    return settled


def settle_stuck_parents(limit=10_000):
    """Settle waiting parents whose chunks are all final (the sweep's safety net).

    A chunk made final outside ``complete()``/``fail()`` (cancelled by hand, say)
    leaves its parent waiting; this finds such parents.

    Returns:
        ``[(parent_id, status), ...]`` as :func:`settle_parents`.
    """
    unfinished = ClassificationRequest.objects.filter(
        parent_id=OuterRef("pk"), status__in=[Status.PENDING, Status.RUNNING]
    )
    ids = list(
        waiting_parents()
        .filter(chunks__isnull=False)
        .exclude(Exists(unfinished))
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
    return settle_parents(ids) if ids else []
