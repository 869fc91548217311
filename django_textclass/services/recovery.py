"""Recovery of requests that a lost message or a dead worker left behind."""

import logging
import time
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from django_textclass.conf import app_settings
from django_textclass.models import ClassificationRequest, Status, SweepRun
from django_textclass.services import dispatch, outcomes

logger = logging.getLogger("django_textclass")


# --- recovery --------------------------------------------------------------------------


def sweep(*, now=None, limit=10_000):
    """Recover requests a lost message or a dead worker left behind.

    Running requests past their lease go back to pending (or fail, when their
    attempts are used up); pending requests that have been due for longer than
    ``DISPATCH_GRACE_SECONDS`` get a new wake-up.

    Returns:
        ``{"requeued": n, "failed": n, "dispatched": n}``.
    """
    now = now or timezone.now()
    SweepRun.objects.update_or_create(name=SWEEP, defaults={"last_run_at": now})
    # Every write below takes only rows no other transaction holds (``unlocked()``): a row a
    # run is completing right now is left to the next sweep, and the sweep never waits on a
    # run that may be waiting on it.
    expired = ClassificationRequest.objects.lease_expired(now)
    with transaction.atomic():
        # Locked and listed, so the failure signal goes to exactly the rows failed here.
        failed_ids = list(
            expired.filter(attempts__gte=app_settings.MAX_ATTEMPTS)
            .order_by()
            .unlocked()
            .values_list("pk", flat=True)[:limit]
        )
        failed = ClassificationRequest.objects.filter(
            pk__in=failed_ids, status=Status.RUNNING, lease_expires_at__lt=now
        ).update(
            status=Status.FAILED,
            error_code="lease_expired",
            error_message="the worker did not finish within its lease, and no attempts are left",
            finished_at=now,
            lease_expires_at=None,
            claim_token=None,
            next_attempt_at=None,
        )
        outcomes.finished_ids(failed_ids, outcomes.FAILED)
    # Split texts whose chunks were made final elsewhere (cancelled by hand, say).
    outcomes.settle_stuck_parents(limit)
    with transaction.atomic():
        requeue_ids = list(expired.order_by().unlocked().values_list("pk", flat=True)[:limit])
        requeued = ClassificationRequest.objects.filter(
            pk__in=requeue_ids, status=Status.RUNNING, lease_expires_at__lt=now
        ).update(
            status=Status.PENDING,
            error_code="lease_expired",
            error_message="the worker did not finish within its lease; sent again",
            lease_expires_at=None,
            claim_token=None,
            next_attempt_at=now,
        )
    with transaction.atomic():
        overdue_ids = list(
            ClassificationRequest.objects.overdue(now, app_settings.DISPATCH_GRACE_SECONDS)
            .order_by("next_attempt_at")
            .unlocked()
            .values_list("pk", flat=True)[:limit]
        )
        # Mark them as freshly due, so the next sweep waits another grace period
        # before sending them again while a backlog drains.
        ClassificationRequest.objects.filter(pk__in=overdue_ids, status=Status.PENDING).update(
            next_attempt_at=now
        )
    dispatched = list(dict.fromkeys(requeue_ids + overdue_ids))
    if dispatched:
        dispatch.send(dispatched)
    # Signals a process owed for its results when it died after committing them.
    outcomes.deliver_overdue(now=now, limit=limit)
    if failed or requeued or overdue_ids:
        logger.info(
            "Sweep: %d requeued, %d failed, %d re-dispatched", requeued, failed, len(overdue_ids)
        )
    return {"requeued": requeued, "failed": failed, "dispatched": len(dispatched)}


# --- the workers' own sweep -------------------------------------------------------------

SWEEP = "sweep"
#: When this process may next look at :class:`~django_textclass.models.SweepRun`.
_next_look = 0.0


def sweep_if_due(*, now=None):
    """Sweep if no process did for ``SWEEP_INTERVAL`` seconds; after each task, and as it streams.

    Beat's sweep waits behind the queue's backlog; this one does not. A process looks at most
    once per interval (a clock of its own, no query in between), and of all the workers that
    look at once, one guarded ``UPDATE`` lets exactly one sweep.

    Returns:
        The sweep's counts if this call swept, else None.
    """
    global _next_look
    interval = app_settings.SWEEP_INTERVAL
    if interval is None or time.monotonic() < _next_look:
        return None
    _next_look = time.monotonic() + interval
    now = now or timezone.now()
    SweepRun.objects.get_or_create(name=SWEEP)
    won = (
        SweepRun.objects.filter(name=SWEEP)
        .filter(Q(last_run_at__isnull=True) | Q(last_run_at__lte=now - timedelta(seconds=interval)))
        .update(last_run_at=now)
    )
    if not won:
        return None
    return sweep(now=now)
