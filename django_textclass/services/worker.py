"""The worker's side: claim requests, group them into calls, decide what each call's outcome means.

What is then written to the claimed rows is :mod:`django_textclass.services.settling`'s job.
"""

import logging
import math
import random
import re
import threading
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from django_textclass.backends import backend_config, get_backend
from django_textclass.conf import app_settings
from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)
from django_textclass.models import (
    ClassificationRequest,
    Status,
)
from django_textclass.services import dispatch, pacing
from django_textclass.services.settling import (
    WAIT_FOR_MODEL_CODES,
    complete,
    fail,
    hand_back,
    reschedule,
    retry_delay,
)
from django_textclass.types import LabelScore, Ranking

logger = logging.getLogger("django_textclass")
#: Batch errors that one text can cause (bad input, too large, too long): sent in halves.
SPLIT_BATCH_STATUSES = (400, 413, 422)
#: How an endpoint says the batch, not a text, is too large (TEI: "batch size 40 > ...").
BATCH_TOO_LARGE = re.compile(r"batch size", re.IGNORECASE)
#: Transient errors that speak of the backend, not of a text: they count toward the circuit.
OUTAGE_CODES = frozenset({"timeout", "connection_error", "request_error"})
OUTAGE_STATUSES = frozenset({408, 502, 503, 504})
#: Seconds (from, to) a row waits for a twin another run is classifying, then looks again.
TWIN_WAIT = (0.5, 1.5)



# --- the worker's side ------------------------------------------------------------------


def claim(ids, *, now=None):
    """Take ownership of the due pending requests among ``ids``.

    On PostgreSQL the rows are locked with ``SKIP LOCKED``, so two workers never
    wait on or own the same row; elsewhere the guarded ``UPDATE ... WHERE
    status = 'pending'`` alone decides (SQLite serialises writers).

    Returns:
        ``(token, rows)``: the claim token and the claimed rows, oldest first.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        candidates = ClassificationRequest.objects.filter(pk__in=ids).due(now)
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        # Read when each was created, so the claim's UPDATE need not ask the roll-up's question.
        created = dict(candidates.values_list("pk", "created_at"))
        ClassificationRequest.objects.filter(pk__in=created).due(now).created_at_among(
            created.values()
        ).update(
            status=Status.RUNNING, claim_token=token, attempts=F("attempts") + 1,
            started_at=now, finished_at=None,
            lease_expires_at=now + timedelta(seconds=app_settings.LEASE_SECONDS),
        )
    rows = list(
        ClassificationRequest.objects.filter(claim_token=token, status=Status.RUNNING)
        .order_by("pk")
    )
    return token, rows


def process(ids):
    """Claim and classify the requests ``ids``; the body of the worker task.

    Requests are grouped by backend, model and parameters; texts already answered
    (same text, backend, model and parameters, within ``CACHE_TTL``) reuse the stored
    result; the rest go to the backend in calls of at most its batch size, one
    call per distinct text. Safe to run twice with the same ids.

    Returns:
        The number of requests this run claimed.
    """
    token, rows = claim(ids)
    groups = defaultdict(list)
    for row in rows:
        key = (row.backend, row.model_id, row.function_to_apply, row.top_k, row.use_cache)
        groups[key].append(row)
    try:
        for (alias, model_id, _, _, use_cache), group in groups.items():
            _process_group(token, alias, model_id, group[0].parameters, use_cache, group)
    except DatabaseError as exc:
        # The connection broke mid-run (a failover, a killed backend): what this run still
        # owns goes back to work now instead of waiting for its lease to run out.
        release_after_database_error(token, exc)
        return len(rows)
    claimed = {row.pk for row in rows}
    _rewake_early([pk for pk in ids if pk not in claimed])
    return len(rows)


def _process_group(token, alias, model_id, parameters, use_cache, rows):
    try:
        backend = get_backend(alias)
    except TextClassConfigurationError as exc:
        logger.error(
            "Backend %r is misconfigured; failing %d request(s): %s", alias, len(rows), exc
        )
        fail(token, rows, code="configuration", message=str(exc))
        return
    if use_cache and app_settings.CACHE_TTL != 0:
        rows = _answer_from_cache(token, alias, model_id, parameters, rows)
        rows = _wait_for_twins(token, alias, model_id, parameters, rows)
    if not rows:
        return
    by_hash = defaultdict(list)
    for row in rows:
        by_hash[row.text_hash].append(row)
    gate = pacing.gate(alias, model_id)
    chunks = _chunks(list(by_hash.values()), backend.batch_size, gate.batch_limit)
    call = Call(token, backend, model_id, parameters, use_cache)
    for position, chunk in enumerate(chunks):
        wait = _send(call, chunk, gate)
        gate = None  # every later call reads the pacing state afresh
        if wait is not None:
            # The backend must not be called again yet: the rest goes back, unspent.
            rest = [row for later in chunks[position + 1 :] for same in later for row in same]
            hand_back(token, rest, wait.until, wait.reason)
            return


def _chunks(distinct, batch_size, learnt_limit):
    """Split texts (each a list of rows) into calls, the biggest batches first.

    A call holds at most the backend's batch size, the limit learnt from the endpoint, and
    the ``batch_limit`` of every row in it (set while a failing batch is bisected).
    """
    size = min(batch_size, learnt_limit or batch_size)
    by_cap = defaultdict(list)
    for same_text in distinct:
        cap = min([size, *(row.batch_limit for row in same_text if row.batch_limit)])
        by_cap[cap].append(same_text)
    return [
        texts[start : start + cap]
        for cap, texts in sorted(by_cap.items(), reverse=True)
        for start in range(0, len(texts), cap)
    ]


@dataclass(frozen=True)
class Call:
    """What every call of one group shares: the run's token, the backend, the model, the options."""

    token: object
    backend: object
    model_id: str
    parameters: object
    use_cache: bool


@dataclass(frozen=True)
class Wait:
    """No further call to this backend (or model) before ``until``, for ``reason``."""

    until: object
    reason: str


def _send(call, chunk, gate=None):
    """One backend call for ``chunk`` (a list of row lists, one list per distinct text).

    ``gate`` is the pacing state already read for this call, if any.

    Returns:
        None, or a :class:`Wait` when the backend must not be called again yet (its pacing
        state says so, or this call just learnt it); the chunk's rows are then back in the
        queue, without an attempt spent.
    """
    token, backend, alias = call.token, call.backend, call.backend.alias
    chunk_rows = [row for same_text in chunk for row in same_text]
    gate = gate or pacing.gate(alias, call.model_id)
    if gate.wait_until is not None:
        hand_back(token, chunk_rows, gate.wait_until, gate.reason)
        return Wait(gate.wait_until, gate.reason)
    rate = _rate_limit(alias)
    if rate is not None:
        next_window = pacing.take_call(alias, rate)
        if next_window is not None:
            hand_back(token, chunk_rows, next_window, "rate_limit")
            return Wait(next_window, "rate_limit")
    wait_for_model = any(row.error_code in WAIT_FOR_MODEL_CODES for row in chunk_rows)
    _renew_lease(token)
    started = time.monotonic()
    try:
        with _heartbeat(token):
            rankings = backend.classify(
                [same_text[0].text for same_text in chunk], call.parameters,
                model_id=call.model_id, use_cache=call.use_cache, wait_for_model=wait_for_model,
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
    except Exception as exc:  # noqa: BLE001 - a backend bug must not strand the rows
        logger.exception("Backend %r raised an unexpected error", alias)
        reschedule(token, chunk_rows, TransientBackendError(
            f"unexpected {type(exc).__name__} in backend {alias!r}", code="backend_exception"
        ))
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
    the endpoint (:func:`~django_textclass.services.pacing.learn_batch_limit`). An answer that
    does not parse as one ranking per text means the endpoint may not take lists at all: each
    text then goes alone.
    """
    alias = call.backend.alias
    if isinstance(exc, InvalidResponseError):
        parts = [[same_text] for same_text in chunk]
        logger.warning(
            "Backend %r gave no usable answer to a batch of %d texts (%s); sending them one "
            "by one. Set OPTIONS['BATCH'] = False if the endpoint never takes lists.",
            alias, len(chunk), exc.code,
        )
    else:
        half = math.ceil(len(chunk) / 2)
        parts = [chunk[:half], chunk[half:]]
        if BATCH_TOO_LARGE.search(str(exc)):
            pacing.learn_batch_limit(alias, call.model_id, half)
    for position, part in enumerate(parts):
        wait = _send(call, part)
        if wait is not None:
            rest = [row for later in parts[position + 1 :] for same in later for row in same]
            hand_back(call.token, rest, wait.until, wait.reason)
            return wait
    return None


def _after_transient(call, chunk, exc, gate):
    """A transient error: wait out a rate limit or a loading model, bisect, or count a failure.

    A 429 and a 503 that says how long the model takes to load set a wait for every worker;
    the rows go back unspent. A batch that fails with an error one text may cause (a 500,
    say) is retried whole once, then in halves (:func:`_bisect_later`); the text it comes
    down to spends its own attempts. Any other transient error counts toward the circuit
    breaker: if it opens (or this was the probe), the rows go
    back unspent too; while the backend answers others, the failure is the text's, and spends
    an attempt.
    """
    alias, rows = call.backend.alias, [row for same_text in chunk for row in same_text]
    if exc.status_code == 429:
        until = pacing.rate_limited(alias, exc.retry_after)
        hand_back(call.token, rows, until, "rate_limited", error=exc)
        return Wait(until, "rate_limited")
    if exc.model_loading and exc.retry_after is not None:
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
    logger.info("A batch of %d texts failed (%s); next time in calls of %d", size, exc.code,
                limit)
    hand_back(token, rows, until, "bisecting", error=exc, batch_limit=limit)


def _renew_lease(token):
    """Extend the lease of the run's requests before a call, so a long run keeps them."""
    ClassificationRequest.objects.filter(claim_token=token, status=Status.RUNNING).update(
        lease_expires_at=timezone.now() + timedelta(seconds=app_settings.LEASE_SECONDS)
    )


@contextmanager
def _heartbeat(token):
    """Renew the run's lease every third of ``LEASE_SECONDS`` while a backend call is out.

    The lease can then be short (a dead worker's rows are back within about a minute) and
    still outlast a slow call. The renewals run in a thread of their own, with its own
    database connection, opened only if a call lasts that long.
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


def release_after_database_error(token, exc):
    """After the database connection broke: hand back what the run still owns, unspent.

    The broken connection is closed and the next query opens a new one. If the database is
    still unreachable, the rows keep their (short) lease and the sweep requeues them.
    """
    logger.warning("Database error during a worker run (%s: %s); handing its requests back",
                   type(exc).__name__, exc)
    connection.close()
    try:
        owned = list(ClassificationRequest.objects.filter(claim_token=token,
                                                          status=Status.RUNNING))
        hand_back(token, owned, timezone.now() + timedelta(seconds=1), "database_error")
    except DatabaseError:
        logger.warning("The database is still unreachable; the sweep will requeue the "
                       "requests when their lease runs out")
        connection.close()


def _answer_from_cache(token, alias, model_id, parameters, rows):
    """Complete the rows whose text already has a fresh stored result; return the rest."""
    ttl = app_settings.CACHE_TTL
    if ttl == 0:
        return rows
    since = None if ttl is None else timezone.now() - timedelta(seconds=ttl)
    cached = {}
    hits = ClassificationRequest.objects.cached_results(
        backend=alias, model_id=model_id, parameters=parameters,
        hashes={row.text_hash for row in rows},
        since=since,
    ).prefetch_related("scores")
    for hit in hits:
        cached.setdefault(hit.text_hash, hit)
    answered, rest = [], []
    for row in rows:
        hit = cached.get(row.text_hash)
        # A hash collision is astronomically unlikely; comparing the text makes it impossible.
        if hit is not None and hit.text == row.text:
            answered.append((row, _ranking_of(hit), hit))
        else:
            rest.append(row)
    if answered:
        complete(token, [(row, ranking) for row, ranking, _ in answered],
                 reused_from={row.pk: hit.pk for row, _, hit in answered})
    return rest


def _wait_for_twins(token, alias, model_id, parameters, rows):
    """Hand back the rows whose text another run is classifying now; return the others.

    A twin (same text, backend, model and parameters) running under another live claim will
    store the answer these rows need: they wait a moment (no attempt spent) and are then
    answered from it by the cache, so each text costs one call however the work is spread
    over messages, processes and hosts. Each run looks after its own claim has committed,
    so of two runs that claim twins at once, at least one sees the other: they never both
    call. (Both may wait; their random delays part them.)
    """
    now = timezone.now()
    busy = set(
        ClassificationRequest.objects.in_flight(
            backend=alias, model_id=model_id, parameters=parameters,
            hashes={row.text_hash for row in rows}, now=now,
        ).exclude(claim_token=token).values_list("text_hash", flat=True)
    )
    if not busy:
        return rows
    waiting = [row for row in rows if row.text_hash in busy]
    until = now + timedelta(seconds=random.uniform(*TWIN_WAIT))
    hand_back(token, waiting, until, "twin_in_flight")
    return [row for row in rows if row.text_hash not in busy]


def _ranking_of(request):
    return Ranking(tuple(LabelScore(s.label, s.score) for s in request.scores.all()))


def _rewake_early(ids):
    """Re-send the wake-up for requests among ``ids`` that are pending but not yet due.

    A wake-up can arrive a little before the row's ``next_attempt_at`` (clock
    rounding, or a duplicate from the sweep); without this the row would wait
    for the sweep.
    """
    now = timezone.now()
    waiting = (
        ClassificationRequest.objects.filter(
            pk__in=ids, status=Status.PENDING, next_attempt_at__gt=now
        )
        .order_by("next_attempt_at")
        .values_list("pk", "next_attempt_at")
    )
    waiting = list(waiting)
    if waiting:
        countdown = (waiting[0][1] - now).total_seconds()
        dispatch.send([pk for pk, _ in waiting], countdown=countdown)
