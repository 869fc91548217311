"""One backend call of a worker run, and what its outcome means for the rows in it.

The pacing state is read first (a wait any worker learnt, the backend's own ``RATE_LIMIT``);
then the call (the run's :func:`heartbeat` keeps its lease while calls are out); then the
answer is stored, or the error decides: a wait for everyone, a batch bisected, a batch halved
for good, a retry that spends the text's attempt, or a failure. The writes themselves are
:mod:`django_textclass.services.settling`'s.
"""

import logging
import math
import re
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from django_textclass.backends import backend_config
from django_textclass.conf import app_settings
from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)
from django_textclass.models import ClassificationRequest, Status
from django_textclass.services import pacing
from django_textclass.services.settling import (
    WAIT_FOR_MODEL_CODES,
    complete,
    fail,
    hand_back,
    reschedule,
    retry_delay,
)

logger = logging.getLogger("django_textclass")

#: Batch errors that one text can cause (bad input, too large, too long, the model failing
#: on it, as TEI's 424 says): sent in halves.
SPLIT_BATCH_STATUSES = (400, 413, 422, 424)
#: Transient codes that say the model is starting, with or without a delay hint (a dedicated
#: endpoint scaled to zero): waited out by every worker, as a model that loads.
STARTING_CODES = frozenset({"endpoint_waking"})
#: How an endpoint says the batch, not a text, is too large (TEI: "batch size 40 > ...").
BATCH_TOO_LARGE = re.compile(r"batch size", re.IGNORECASE)
#: The limit such a refusal may name: TEI's "... > maximum allowed batch size 32", or
#: "... exceeds the maximum of 32".
BATCH_MAXIMUM = re.compile(
    r"batch size.*\bmaximum(?: allowed batch size| of)?\s+(\d+)", re.IGNORECASE
)
#: Transient errors that speak of the backend, not of a text: they count toward the circuit.
OUTAGE_CODES = frozenset({"timeout", "connection_error", "request_error"})
OUTAGE_STATUSES = frozenset({408, 502, 503, 504})


@dataclass(frozen=True)
class Call:
    """What every call of one group shares: the run's token, the backend, the model, the options."""

    token: object
    backend: object
    model_id: str
    parameters: object
    use_cache: bool
    #: Held while the request is out (not while its answer is stored), so that the run's
    #: next call goes while this one's results are written: a semaphore of CALLS_IN_FLIGHT.
    #: A call reads the pacing state once it holds one.
    slots: object = field(default_factory=nullcontext)
    #: The model revision the rows name (``""``: none); sent to a backend that can load one.
    revision: str = ""


@dataclass(frozen=True)
class Wait:
    """No further call to this backend (or model) before ``until``, for ``reason``."""

    until: object
    reason: str


def send(call, chunk, gate=None):
    """One backend call for ``chunk`` (a list of row lists, one list per distinct text).

    ``gate`` is the pacing state already read for this call, if any.

    Returns:
        None, or a :class:`Wait` when the backend must not be called again yet (its pacing
        state says so, or this call just learnt it); the chunk's rows are then back in the
        queue, without an attempt spent.
    """
    token, backend, alias = call.token, call.backend, call.backend.alias
    chunk_rows = [row for same_text in chunk for row in same_text]
    wait_for_model = any(row.error_code in WAIT_FOR_MODEL_CODES for row in chunk_rows)
    waited = _take_slot(call.slots)
    try:
        try:
            if waited or gate is None:
                # Read once the call may go: while it waited for a slot, another call of the
                # run may have met a 429 or an outage, and set a wait no call may cut.
                gate = pacing.gate(alias, call.model_id)
            wait = _held_back(call, chunk_rows, gate)
            if wait is not None:
                return wait
            limit = gate.batch_limit
            if not (limit and len(chunk) > limit):
                started = time.monotonic()
                rankings = backend.classify(
                    [same_text[0].text for same_text in chunk],
                    call.parameters,
                    model_id=call.model_id,
                    use_cache=call.use_cache,
                    wait_for_model=wait_for_model,
                    revision=call.revision or None,
                )
        finally:
            _give_slot(call.slots)
        if limit and len(chunk) > limit:
            # The endpoint's limit was learnt after this chunk was cut (by another call,
            # while it waited): a batch known to be refused is not sent; its parts are.
            return _send_parts(
                call, [chunk[start : start + limit] for start in range(0, len(chunk), limit)]
            )
    except TransientBackendError as exc:
        return _after_transient(call, chunk, exc, gate)
    except PermanentBackendError as exc:
        pacing.succeeded(alias, gate)  # the backend answered: it is up
        if len(chunk) > 1 and _may_be_one_text(exc):
            return _split_refused(call, chunk, exc)
        fail(token, chunk_rows, code=exc.code, message=str(exc))
    except TextClassConfigurationError as exc:
        fail(token, chunk_rows, code="configuration", message=str(exc))
    except DatabaseError:
        raise  # the pacing state could not be read: the run hands its rows back, unspent
    except Exception as exc:  # noqa: BLE001 - a backend bug must not strand the rows
        logger.exception("Backend %r raised an unexpected error", alias)
        reschedule(
            token,
            chunk_rows,
            TransientBackendError(
                f"unexpected {type(exc).__name__} in backend {alias!r}", code="backend_exception"
            ),
        )
    else:
        pacing.succeeded(alias, gate)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        answers = [
            (row, ranking)
            for same_text, ranking in zip(chunk, rankings, strict=True)
            for row in same_text
        ]
        complete(token, answers, backend_ms=elapsed_ms)
    return None


def _take_slot(slots):
    """Take a call slot (a semaphore, or no limit); whether that meant waiting for one."""
    if not hasattr(slots, "acquire"):
        return False
    if slots.acquire(blocking=False):
        return False
    slots.acquire()
    return True


def _give_slot(slots):
    if hasattr(slots, "release"):
        slots.release()


def _held_back(call, chunk_rows, gate):
    """The :class:`Wait` the pacing state imposes on this call, its rows handed back; or None.

    A wait of the backend or the model, or the backend's own ``RATE_LIMIT`` window being full.
    """
    alias = call.backend.alias
    if gate.wait_until is not None:
        hand_back(call.token, chunk_rows, gate.wait_until, gate.reason)
        return Wait(gate.wait_until, gate.reason)
    rate = _rate_limit(alias)
    if rate is not None:
        next_window = pacing.take_call(alias, rate)
        if next_window is not None:
            hand_back(call.token, chunk_rows, next_window, "rate_limit")
            return Wait(next_window, "rate_limit")
    return None


def _rate_limit(alias):
    """The backend's own ``RATE_LIMIT`` as ``(calls, seconds)``, or None (checked: E007)."""
    try:
        return pacing.parse_rate(backend_config(alias).get("RATE_LIMIT"))
    except ValueError:
        return None


def _split_refused(call, chunk, exc):
    """A batch refused for good: send its halves now, down to the text that is refused alone.

    A text too long for the model fails alone after about log2(batch) calls, the others
    succeed. A refusal of the batch's size (``batch size 40 exceeds ...``) is remembered for
    the endpoint (:func:`~django_textclass.services.pacing.learn_batch_limit`): the limit it
    names (TEI's ``maximum allowed batch size 32``), else half the batch. An answer that
    does not parse as one ranking per text means the endpoint may not take lists at all: each
    text then goes alone.
    """
    alias = call.backend.alias
    if isinstance(exc, InvalidResponseError):
        parts = [[same_text] for same_text in chunk]
        logger.warning(
            "Backend %r gave no usable answer to a batch of %d texts (%s); sending them one "
            "by one. Set OPTIONS['BATCH'] = False if the endpoint never takes lists (for a TEI "
            "server, use django_textclass.backends.tei.Backend).",
            alias,
            len(chunk),
            exc.code,
        )
    else:
        size = math.ceil(len(chunk) / 2)
        if BATCH_TOO_LARGE.search(str(exc)):
            named = BATCH_MAXIMUM.search(str(exc))
            if named and 1 <= int(named.group(1)) < len(chunk):
                size = int(named.group(1))  # the endpoint said its limit: no halving needed
            pacing.learn_batch_limit(alias, call.model_id, size)
        parts = [chunk[start : start + size] for start in range(0, len(chunk), size)]
    return _send_parts(call, parts)


def _send_parts(call, parts):
    """Send ``parts`` (chunks) one after another; after a wait, the rest go back unsent."""
    for position, part in enumerate(parts):
        wait = send(call, part)
        if wait is not None:
            rest = [row for later in parts[position + 1 :] for same in later for row in same]
            hand_back(call.token, rest, wait.until, wait.reason)
            return wait
    return None


def _after_transient(call, chunk, exc, gate):
    """A transient error: wait out a rate limit or a loading model, bisect, or count a failure.

    A 429, a 503 that says how long the model takes to load, and a dedicated endpoint's 503
    while it starts a replica set a wait for every worker; the rows go back unspent. A batch
    that fails with an error one text may cause (a 500, say) is retried whole once, then in
    halves (:func:`_bisect_later`); the text it comes down to spends its own attempts. Any
    other transient error counts toward the circuit breaker: if it opens (or this was the
    probe), the rows go back unspent too; while the backend answers others, the failure is
    the text's, and spends an attempt.
    """
    alias, rows = call.backend.alias, [row for same_text in chunk for row in same_text]
    if exc.status_code == 429:
        until = pacing.rate_limited(alias, exc.retry_after)
        hand_back(call.token, rows, until, "rate_limited", error=exc)
        return Wait(until, "rate_limited")
    if exc.model_loading and (exc.retry_after is not None or exc.code in STARTING_CODES):
        until = pacing.model_loading(alias, call.model_id, exc.retry_after)
        hand_back(call.token, rows, until, "model_loading", error=exc)
        return Wait(until, "model_loading")
    if not is_outage(exc):
        if len(chunk) > 1:
            _bisect_later(call.token, chunk, exc)
            return None
        if all(row.batch_limit == 1 for row in rows):
            # Bisected down to this text while its batch-mates succeeded: the culprit.
            reschedule(call.token, rows, exc)
            return None
    until = pacing.failed(alias, exc.code, probe=gate.probe)
    if until is not None:
        hand_back(call.token, rows, until, "circuit_open", error=exc)
        return Wait(until, "circuit_open")
    reschedule(call.token, rows, exc)
    return None


def _may_be_one_text(exc):
    """Whether a permanent error on a batch may come from one text or from the list itself."""
    return isinstance(exc, InvalidResponseError) or exc.status_code in SPLIT_BATCH_STATUSES


def is_outage(exc):
    """Whether a transient error speaks of the backend (down, overloaded), not of a text."""
    status = exc.status_code
    if status is None and exc.code.startswith("http_") and exc.code[5:].isdigit():
        status = int(exc.code[5:])  # a backend that set the code but not the status
    return exc.code in OUTAGE_CODES or status in OUTAGE_STATUSES


def _bisect_later(token, chunk, exc):
    """A batch failed with an error one of its texts may cause: try it again, then in halves.

    Its first failure sends the same batch again; each further failure halves the
    ``batch_limit`` of its rows, so the text that makes the API fail ends up in a call of its
    own, where its own attempts run out. Until then no attempt is spent: the others are not
    to blame. Costs about two calls per halving, log2(batch) halvings.
    """
    rows = [row for same_text in chunk for row in same_text]
    size = len(chunk)
    failed_before = all(row.batch_limit is not None and row.batch_limit <= size for row in rows)
    limit = math.ceil(size / 2) if failed_before else size
    until = timezone.now() + timedelta(seconds=retry_delay(1, exc.retry_after))
    logger.info("A batch of %d texts failed (%s); next time in calls of %d", size, exc.code, limit)
    hand_back(token, rows, until, "bisecting", error=exc, batch_limit=limit)


def _renew_lease(token):
    """Extend the lease of the run's requests, so a long run keeps them.

    A row the run's own call thread is completing at that moment is skipped (it needs no
    lease once stored, and the next renewal takes it if not): waiting for it, in another
    order than the completion locks its rows, could deadlock with it.
    """
    mine = ClassificationRequest.objects.filter(claim_token=token, status=Status.RUNNING)
    with transaction.atomic():
        ClassificationRequest.objects.filter(
            pk__in=mine.order_by().unlocked().values("pk"),
            claim_token=token,
            status=Status.RUNNING,
        ).update(lease_expires_at=timezone.now() + timedelta(seconds=app_settings.LEASE_SECONDS))


@contextmanager
def heartbeat(token):
    """Renew the run's lease every third of ``LEASE_SECONDS`` while the run lasts.

    The lease can then be short (a dead worker's rows are back within about a minute) and
    still outlast slow calls. The renewals run in a thread of their own, with its own
    database connection, opened only if the run lasts that long.
    """
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(app_settings.LEASE_SECONDS / 3):
                _renew_lease(token)
        except DatabaseError:
            logger.warning("Could not renew a lease during a call; the sweep may requeue it")
        finally:
            connection.close()  # this thread's own connection, if it opened one

    thread = threading.Thread(target=beat, name="textclass-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
