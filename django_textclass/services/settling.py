"""Settling the rows one worker run owns: results stored, failures, retries, waits handed back.

Every write here is guarded by the run's claim token and the ``running`` status, so a run
that lost its lease (the sweep gave its rows to another) changes nothing. The worker
(:mod:`django_textclass.services.worker`) decides what happened to a call; this module writes
it, and sends the wake-ups and signals that follow.
"""

import logging
import random
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from django_textclass.conf import app_settings
from django_textclass.models import (
    ClassificationRequest,
    RequestEvent,
    Status,
)
from django_textclass.services import bulk, dispatch, outcomes

logger = logging.getLogger("django_textclass")

#: Error codes after which the next call asks the server to wait for the model.
WAIT_FOR_MODEL_CODES = ("http_503", "model_loading")


def complete(token, answers, *, backend_ms=None, reused_from=None):
    """Store the rankings of requests this run still owns and mark them succeeded.

    Args:
        token: the claim token of the run.
        answers: ``(request, ranking)`` pairs.
        backend_ms: duration of the backend call that produced them.
        reused_from: ``{request pk: source request pk}`` for cache hits.

    Returns:
        How many requests were completed (those whose claim was lost are skipped).
    """
    reused_from = reused_from or {}
    now = timezone.now()
    with transaction.atomic():
        done = bulk.complete_rows(token, answers, now, backend_ms, reused_from)
        if not done:
            return 0
        mine = [(row, ranking) for row, ranking in answers if row.pk in done]
        # This run won running -> succeeded: signals and rules, once, after commit. The rows
        # in memory are as stored (bulk.complete_rows set their fields; their scores here).
        if outcomes.listening(outcomes.SUCCEEDED):
            for row, ranking in mine:
                bulk.attach_scores(row, ranking)
        outcomes.finished(
            [row for row, _ in mine], outcomes.SUCCEEDED, as_stored=True, announced=bulk.set_based()
        )
    logger.info("Completed %d request(s)%s", len(mine), " from cache" if reused_from else "")
    return len(mine)


def fail(token, rows, *, code, message):
    """Mark requests this run still owns as failed for good. Returns how many."""
    with transaction.atomic():
        # Lock first, so the rows this run fails are known (for the failure signal).
        owned, updated = _update_owned(
            token,
            rows,
            status=Status.FAILED,
            error_code=code[:64],
            error_message=message,
            finished_at=timezone.now(),
            next_attempt_at=None,
        )
        outcomes.finished([row for row in rows if row.pk in owned], outcomes.FAILED)
    if updated:
        logger.warning("Failed %d request(s): %s", updated, code)
    return updated


def retry_delay(attempts, hint=None):
    """Seconds to wait before attempt ``attempts + 1``.

    Exponential backoff ``BASE * 2**(attempts - 1)`` capped at ``RETRY_BACKOFF_MAX``,
    with "equal jitter" (a random value between half and all of it). A server's
    own hint (capped at ``RETRY_HINT_MAX``) is a floor: we never call earlier
    than we were told to.
    """
    backoff = min(
        app_settings.RETRY_BACKOFF_MAX,
        app_settings.RETRY_BACKOFF_BASE * 2 ** max(0, attempts - 1),
    )
    delay = random.uniform(backoff / 2, backoff)
    if hint is not None:
        delay = max(delay, min(float(hint), app_settings.RETRY_HINT_MAX))
    return delay


def past_deadline(row, now=None):
    """Whether ``row`` was submitted longer than ``RETRY_DEADLINE`` ago (None: never)."""
    deadline = app_settings.RETRY_DEADLINE
    if deadline is None:
        return False
    return row.created_at < (now or timezone.now()) - timedelta(seconds=deadline)


def _fail_past_deadline(token, rows, exc):
    """Fail the rows past ``RETRY_DEADLINE``; return the others."""
    late = [row for row in rows if past_deadline(row)]
    if late:
        fail(
            token,
            late,
            code="deadline_exceeded",
            message=(
                f"still failing {app_settings.RETRY_DEADLINE:g} s after it was submitted; "
                f"last error: {exc}"
            ),
        )
    return [row for row in rows if not past_deadline(row)]


def reschedule(token, rows, exc):
    """After a transient error of the text's own: send the rows again later, or fail them.

    Each such error spends an attempt: a row fails with ``retries_exhausted`` after
    ``MAX_ATTEMPTS`` of them, or with ``deadline_exceeded`` once it was submitted more than
    ``RETRY_DEADLINE`` ago. (Errors of the whole backend go through :func:`hand_back`.)
    """
    rows = _fail_past_deadline(token, rows, exc)
    exhausted = [row for row in rows if row.attempts >= app_settings.MAX_ATTEMPTS]
    if exhausted:
        fail(
            token,
            exhausted,
            code="retries_exhausted",
            message=f"gave up after {exhausted[0].attempts} attempt(s); last error: {exc}",
        )
    again = [row for row in rows if row.attempts < app_settings.MAX_ATTEMPTS]
    if not again:
        return
    # Rows of one call share the attempt count in practice; the smallest is the kindest.
    delay = retry_delay(min(row.attempts for row in again), exc.retry_after)
    code = exc.code
    if exc.model_loading and code not in WAIT_FOR_MODEL_CODES:
        code = "model_loading"
    with transaction.atomic():
        owned, updated = _update_owned(
            token,
            again,
            status=Status.PENDING,
            error_code=code[:64],
            error_message=str(exc),
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        _record(
            RequestEvent.Kind.RETRY,
            [row for row in again if row.pk in owned],
            code,
            delay,
            str(exc),
        )
    if updated:
        logger.info("Will retry %d request(s) in %.1f s after %s", updated, delay, exc.code)
        dispatch.send([row.pk for row in again], countdown=delay)


def hand_back(token, rows, until, reason, *, error=None, batch_limit=None):
    """Give claimed rows back to the queue for ``until``, refunding the claim's attempt.

    For waits the backend imposes (a rate limit, a loading model, an open circuit): they are
    not the text's fault, so they spend no attempt. A rate limit never fails a text; the
    other waits fail rows past ``RETRY_DEADLINE`` (``deadline_exceeded``). The error, when a
    call produced one, is kept on the row (``error_code``: after a 503 the next call asks the
    server to wait for the model).
    """
    if error is not None and reason != "rate_limited":
        rows = _fail_past_deadline(token, rows, error)
    if not rows:
        return 0
    fields = {}
    if error is not None:
        fields = {"error_code": error.code[:64], "error_message": str(error)}
    if batch_limit is not None:
        fields["batch_limit"] = batch_limit
    countdown = max(0.0, (until - timezone.now()).total_seconds())
    with transaction.atomic():
        owned, updated = _update_owned(
            token,
            rows,
            status=Status.PENDING,
            attempts=Greatest(F("attempts") - 1, Value(0)),
            next_attempt_at=until,
            **fields,
        )
        _record(
            RequestEvent.Kind.WAIT,
            [row for row in rows if row.pk in owned],
            reason,
            countdown,
            str(error) if error is not None else "",
            refunded=True,
        )
    if updated:
        logger.info("Handed back %d request(s) for %.1f s: %s", updated, countdown, reason)
        dispatch.send([row.pk for row in rows], countdown=countdown)
    return updated


def _update_owned(token, rows, **fields):
    """Lock the rows among ``rows`` this run still owns and release them with ``fields``.

    Call inside a transaction. The claim ends (no token, no lease) whatever the new status.

    Returns:
        ``(owned, updated)``: the pks locked, and how many rows the ``UPDATE`` changed.
    """
    owned = _owned(token, rows)
    updated = (
        ClassificationRequest.objects.filter(pk__in=owned, claim_token=token, status=Status.RUNNING)
        .created_at_among(row.created_at for row in rows)
        .update(lease_expires_at=None, claim_token=None, **fields)
    )
    return owned, updated


def _owned(token, rows):
    """The pks among ``rows`` this run still owns, locked until the transaction ends."""
    return set(
        ClassificationRequest.objects.select_for_update()
        .filter(pk__in=[row.pk for row in rows], claim_token=token, status=Status.RUNNING)
        .values_list("pk", flat=True)
    )


def _record(kind, rows, reason, wait_seconds, message, *, refunded=False):
    """One :class:`~django_textclass.models.RequestEvent` per row (one ``INSERT``)."""
    if rows:
        RequestEvent.objects.bulk_create(
            RequestEvent(
                request_id=row.pk,
                kind=kind,
                reason=reason[:64],
                attempts=max(0, row.attempts - 1) if refunded else row.attempts,
                wait_seconds=round(wait_seconds, 3),
                message=message,
            )
            for row in rows
        )
