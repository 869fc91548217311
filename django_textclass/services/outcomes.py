"""What happens once a request's result is final: split parents settled, signals sent.

``services`` calls :func:`finished` inside the transaction of the guarded
transition that made requests final (``running -> succeeded`` in ``complete()``,
``running -> failed`` in ``fail()`` and the sweep). Only the run that won that
transition gets here, so everything below happens once per result, even when the
same task runs twice:

1. split parents whose last chunk just became final are settled, in the same
   transaction (see :mod:`django_textclass.services.chunks`);
2. for each top-level request, a :class:`~django_textclass.models.Notification` row is
   written in that same transaction (an outbox), and the signal is sent after commit
   (:mod:`django_textclass.signals`); the row is then deleted. If the process dies between
   the commit and the sending, or a receiver lost its database connection meanwhile, the
   sweep sends it later (:func:`deliver_overdue`). A signal is therefore sent at least
   once; the content registry's threshold rules, which run from a
   ``classification_succeeded`` receiver, still fire once per result (a unique
   constraint on their firings). Nothing here knows about registered content.

Nothing here raises into the pipeline: a failure is logged.
"""

import logging
from collections import defaultdict
from datetime import timedelta
from functools import partial

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from django_textclass import signals
from django_textclass.services import chunks, waiting

logger = logging.getLogger("django_textclass.outcomes")

SUCCEEDED, FAILED = "succeeded", "failed"


def finished(requests, outcome, *, as_stored=False, announced=False):
    """Record that ``requests`` just became final with ``outcome``; call in the transaction.

    Args:
        requests: the requests this run made final (objects with ``pk`` and
            ``parent_id``).
        outcome: ``"succeeded"`` or ``"failed"``.
        as_stored: True if the objects are as the transaction stored them, scores
            included (the completion's are): the signals are then sent with them, without
            reading them back.
        announced: True if the statement that made them final already named them to the
            waiting web requests (:func:`django_textclass.services.waiting.announce`).
    """
    top = [row for row in requests if row.parent_id is None]
    notify = {SUCCEEDED: [], FAILED: []}
    notify[outcome].extend(row.pk for row in top)
    parent_ids = {row.parent_id for row in requests if row.parent_id is not None}
    settled = chunks.settle_parents(parent_ids) if parent_ids else []
    _add_settled(notify, settled)
    waiting.announce(
        [*([] if announced else [row.pk for row in top]), *(parent_id for parent_id, _ in settled)]
    )
    _schedule(notify, {row.pk: row for row in top} if as_stored else None)


def listening(outcome):
    """Whether a receiver listens for ``outcome`` (``"succeeded"`` or ``"failed"``)."""
    from django_textclass.models import ClassificationRequest

    return _SIGNALS[outcome].has_listeners(ClassificationRequest)


def settle_stuck_parents(limit=10_000):
    """Settle split parents left waiting, and notify their results after commit.

    See :func:`django_textclass.services.chunks.settle_stuck_parents`. Returns how many
    were settled.
    """
    with transaction.atomic():
        settled = chunks.settle_stuck_parents(limit)
        notify = {SUCCEEDED: [], FAILED: []}
        _add_settled(notify, settled)
        waiting.announce([parent_id for parent_id, _ in settled])
        _schedule(notify)
    return len(settled)


def _add_settled(notify, settled):
    for parent_id, status in settled:
        if status in notify:
            notify[status].append(parent_id)


#: Seconds the process that wrote a notification has to send it before the sweep may.
DELIVERY_SECONDS = 120

#: What a receiver raises when the database link broke under it (a failover, a killed
#: session): the notification is then kept for the sweep, which sends it again. Any other
#: exception is the receiver's own bug: logged, and not retried.
CUT_OFF = (OperationalError, InterfaceError)

_SIGNALS = {SUCCEEDED: signals.classification_succeeded, FAILED: signals.classification_failed}


def _schedule(notify, loaded=None):
    """Write the notifications owed (in the caller's transaction); send them after commit.

    ``loaded`` holds requests already in memory as stored, by pk (see :func:`finished`).
    """
    from django_textclass.models import Notification

    wanted = {outcome: ids for outcome, ids in notify.items() if ids and listening(outcome)}
    if not wanted:
        return
    now = timezone.now()
    due = now + timedelta(seconds=DELIVERY_SECONDS)
    rows = Notification.objects.bulk_create(
        Notification(request_id=pk, outcome=outcome, created_at=now, due_at=due)
        for outcome, ids in wanted.items()
        for pk in ids
    )
    transaction.on_commit(
        partial(_deliver_safely, [row.pk for row in rows], notify=wanted, loaded=loaded),
        robust=True,
    )


def deliver_overdue(*, now=None, limit=10_000):
    """Send the notifications whose writer did not (it died after its commit). Returns how many.

    Each is taken with a guarded ``UPDATE`` of its ``due_at``, so two sweeps never send the
    same one at once.
    """
    from django_textclass.models import Notification

    now = now or timezone.now()
    overdue = list(
        Notification.objects.filter(due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not overdue:
        return 0
    later = now + timedelta(seconds=DELIVERY_SECONDS)
    Notification.objects.filter(pk__in=overdue, due_at__lte=now).update(due_at=later)
    taken = list(
        Notification.objects.filter(pk__in=overdue, due_at=later).values_list("pk", flat=True)
    )
    if taken:
        logger.warning("Sending %d notification(s) a crashed process left unsent", len(taken))
        _deliver_safely(taken)
    return len(taken)


def _deliver_safely(pks, notify=None, loaded=None):
    """Send the notifications ``pks`` and delete them.

    ``notify`` is what they say, when the caller knows it (the writer does): no query then;
    ``loaded``, the requests it holds as stored, by pk.
    """
    from django_textclass.models import Notification

    try:
        if notify is None:
            notify = {SUCCEEDED: [], FAILED: []}
            for request_id, outcome in Notification.objects.filter(pk__in=pks).values_list(
                "request_id", "outcome"
            ):
                notify[outcome].append(request_id)
        cut_off = notify_now(notify, loaded)
        sent = Notification.objects.filter(pk__in=pks)
        if cut_off:
            # A receiver lost the database (the rules' among them, maybe): the sweep sends
            # these again once they are due; the rules still fire once.
            logger.warning(
                "%d signal(s) met a broken database connection; the sweep will send them again",
                len(cut_off),
            )
            sent = sent.exclude(request_id__in=cut_off)
        sent.delete()
    except Exception:  # noqa: BLE001 - the result is stored; never fail the task over this
        logger.exception(
            "Could not send the signals or run the rules of a result; the sweep will try again"
        )


def finished_ids(ids, outcome):
    """:func:`finished` for requests known by id only (one query for their parents)."""
    from django_textclass.models import ClassificationRequest

    if ids:
        finished(
            list(ClassificationRequest.objects.filter(pk__in=ids).only("pk", "parent_id")), outcome
        )


def notify_now(notify, loaded=None):
    """Send the signals for ``{"succeeded": ids, "failed": ids}``.

    Requests, their scores and their sources are loaded in a few queries, and
    only when a receiver is waiting for them; those in ``loaded`` (by pk, as stored)
    are not read again.

    Returns:
        The pks of the requests for which a receiver raised one of :data:`CUT_OFF`.
    """
    from django_textclass.models import ClassificationRequest

    sender = ClassificationRequest
    loaded = loaded or {}
    cut_off = set()
    for outcome, signal in _SIGNALS.items():
        ids = notify.get(outcome) or []
        if not ids:
            continue
        if not signal.has_listeners(sender):
            continue
        requests = [loaded[pk] for pk in ids if pk in loaded]
        missing = [pk for pk in ids if pk not in loaded]
        if missing:
            requests += ClassificationRequest.objects.filter(pk__in=missing).prefetch_related(
                "scores"
            )
        requests.sort(key=lambda request: request.pk)
        sources = load_sources(requests)
        for request in requests:
            source = sources.get((request.content_type_id, request.object_id))
            if outcome == SUCCEEDED:
                results = signal.send_robust(
                    sender, request=request, source=source, labels=request.labels
                )
            else:
                results = signal.send_robust(
                    sender,
                    request=request,
                    source=source,
                    error_code=request.error_code,
                    error_message=request.error_message,
                )
            for receiver, result in results:
                if isinstance(result, Exception):
                    logger.error(
                        "A %s receiver %r raised %s: %s",
                        outcome,
                        receiver,
                        type(result).__name__,
                        result,
                    )
                    if isinstance(result, CUT_OFF):
                        cut_off.add(request.pk)
    return cut_off


def load_sources(requests):
    """The source objects of ``requests``, one query per content type.

    Returns:
        ``{(content_type_id, object_id): obj}``; deleted objects are absent.
    """
    from django.contrib.contenttypes.models import ContentType

    wanted = defaultdict(set)
    for request in requests:
        if request.content_type_id and request.object_id:
            # Through the content type cache: no query per request.
            content_type = ContentType.objects.get_for_id(request.content_type_id)
            wanted[content_type].add(request.object_id)
    found = {}
    for content_type, object_ids in wanted.items():
        model = content_type.model_class()
        if model is None:
            continue
        for obj in model._default_manager.filter(pk__in=list(object_ids)):
            found[(content_type.pk, str(obj.pk))] = obj
    return found
