"""The worker's side: claim requests, answer what the cache and twins can, batch the rest.

Each call and the meaning of its outcome are :mod:`django_textclass.services.calls`; what is
then written to the claimed rows is :mod:`django_textclass.services.settling`'s job.
"""

import logging
import math
import os
import random
import threading
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from django_textclass.backends import backend_config, get_backend
from django_textclass.backends.base import positive_number
from django_textclass.conf import app_settings
from django_textclass.exceptions import (
    TextClassConfigurationError,
)
from django_textclass.models import (
    ClassificationRequest,
    Status,
)
from django_textclass.services import bulk, dispatch, pacing
from django_textclass.services.calls import Call, heartbeat, send
from django_textclass.services.settling import (
    complete,
    fail,
    hand_back,
)
from django_textclass.types import LabelScore, Ranking

logger = logging.getLogger("django_textclass")
#: Seconds (from, to) a row waits for a twin another run is classifying, then looks again.
TWIN_WAIT = (0.5, 1.5)



# --- the worker's side ------------------------------------------------------------------


def claim(ids, *, now=None):
    """Take ownership of the due pending requests among ``ids``.

    On PostgreSQL the rows are locked with ``SKIP LOCKED``, so two workers never
    wait on or own the same row, and the claim is one ``UPDATE ... RETURNING``;
    elsewhere the guarded ``UPDATE ... WHERE status = 'pending'`` alone decides
    (SQLite serialises writers).

    Returns:
        ``(token, rows)``: the claim token and the claimed rows, oldest first.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    candidates = ClassificationRequest.objects.filter(pk__in=ids).due(now)
    return token, bulk.claim_rows(candidates, token, now)


def claim_like(token, like, limit, *, now=None):
    """Claim for the run ``token`` up to ``limit`` more due rows of the same work as ``like``.

    Same backend, model and parameters, oldest first, whichever message woke them: a run
    fills its calls with what is waiting instead of sending the part-filled batches its
    own message holds. The message of a row taken here finds it no longer pending.
    """
    now = now or timezone.now()
    candidates = ClassificationRequest.objects.due(now).filter(
        backend=like.backend, model_id=like.model_id, use_cache=like.use_cache,
        function_to_apply=like.function_to_apply, top_k=like.top_k,
    ).order_by("pk")[:limit]
    return bulk.claim_rows(candidates, token, now)


def process(ids):
    """Claim and classify the requests ``ids``; the body of the worker task.

    Requests are grouped by backend, model and parameters; each group is topped up with
    other waiting requests of the same kind to fill the backend's calls; texts already
    answered (same text, backend, model and parameters, within ``CACHE_TTL``) reuse the
    stored result; the rest go to the backend in calls of at most its batch size, one
    call per distinct text, up to ``CALLS_IN_FLIGHT`` of them at once. Safe to run twice
    with the same ids.

    Returns:
        The number of requests this run claimed.
    """
    token, rows = claim(ids)
    groups = defaultdict(list)
    for row in rows:
        key = (row.backend, row.model_id, row.function_to_apply, row.top_k, row.use_cache)
        groups[key].append(row)
    claimed = [len(rows)]
    try:
        with heartbeat(token):
            for group in groups.values():
                claimed.append(_process_group(token, group))
    except DatabaseError as exc:
        # The connection broke mid-run (a failover, a killed backend): what this run still
        # owns goes back to work now instead of waiting for its lease to run out.
        release_after_database_error(token, exc)
        return sum(claimed)
    mine = {row.pk for row in rows}
    _rewake_early([pk for pk in ids if pk not in mine])
    return sum(claimed)


#: At most this many top-ups of a group (each costs a claim, a cache and a twin query).
GATHER_ROUNDS = 4


def _process_group(token, rows):
    """Classify one group of claimed rows; returns how many more rows it claimed."""
    first = rows[0]
    alias, model_id, parameters, use_cache = (first.backend, first.model_id, first.parameters,
                                              first.use_cache)
    try:
        backend = get_backend(alias)
        in_flight = calls_in_flight(alias, backend)
    except TextClassConfigurationError as exc:
        logger.error(
            "Backend %r is misconfigured; failing %d request(s): %s", alias, len(rows), exc
        )
        fail(token, rows, code="configuration", message=str(exc))
        return 0
    gate = pacing.gate(alias, model_id)
    if gate.wait_until is not None:
        hand_back(token, rows, gate.wait_until, gate.reason)
        return 0
    size = min(backend.batch_size, gate.batch_limit or backend.batch_size)
    work = _Work(token, alias, model_id, parameters, use_cache and app_settings.CACHE_TTL != 0)
    work.add(rows)
    gathered = _gather(work, first, in_flight * size, size)
    chunks = _chunks(list(work.by_hash.values()), backend.batch_size, gate.batch_limit)
    if chunks:
        _send_all(Call(token, backend, model_id, parameters, use_cache), chunks, gate,
                  in_flight)
    return gathered


def _gather(work, like, target, size):
    """Top the group up with waiting rows of its kind: ``target`` texts, in full calls.

    Stops when the distinct texts to send fill whole calls and reach ``target``, when
    nothing more is waiting, or after :data:`GATHER_ROUNDS`. Returns how many it claimed.
    """
    gathered = 0
    for _ in range(GATHER_ROUNDS):
        distinct = len(work.by_hash)
        missing = target - distinct if distinct < target else -distinct % size
        if missing == 0:
            break
        # Ask for more rows than texts missing when the rows so far held duplicates.
        share = max(work.new_texts_share, 0.25)
        wanted = math.ceil(missing / share)
        more = claim_like(work.token, like, wanted)
        gathered += len(more)
        work.add(more)
        if len(more) < wanted:
            break  # nothing more is waiting
    return gathered


class _Work:
    """The rows of one group a run will send: its distinct texts, less cache hits and twins."""

    def __init__(self, token, alias, model_id, parameters, dedupe):
        self.token, self.alias, self.model_id, self.parameters = (token, alias, model_id,
                                                                  parameters)
        self.dedupe = dedupe
        self.by_hash = {}
        self.rows_added = 0
        self.new_texts = 0

    @property
    def new_texts_share(self):
        """The share of added rows that brought a text to send (1.0 before any)."""
        return self.new_texts / self.rows_added if self.rows_added else 1.0

    def add(self, rows):
        """Take claimed rows: answer what the cache can, hand back twins, keep the rest."""
        before = len(self.by_hash)
        self.rows_added += len(rows)
        known = [row for row in rows if row.text_hash in self.by_hash]
        rows = [row for row in rows if row.text_hash not in self.by_hash]
        if self.dedupe and rows:
            rows = _answer_from_cache(self.token, self.alias, self.model_id, self.parameters,
                                      rows)
            rows = _wait_for_twins(self.token, self.alias, self.model_id, self.parameters, rows)
        for row in known + rows:
            self.by_hash.setdefault(row.text_hash, []).append(row)
        self.new_texts += len(self.by_hash) - before


def calls_in_flight(alias, backend):
    """How many calls one run keeps out at once for backend ``alias`` (``CALLS_IN_FLIGHT``).

    One at a time on SQLite, which serialises writers (and inside a transaction, whose
    rows other connections cannot see: the tests' ``TestCase``).
    """
    value = backend_config(alias).get("CALLS_IN_FLIGHT", backend.calls_in_flight)
    value = positive_number(alias, "CALLS_IN_FLIGHT", value, int)
    if connection.vendor == "sqlite" or connection.in_atomic_block:
        return 1
    return value


def _send_all(call, chunks, gate, in_flight):
    """Send ``chunks``, up to ``in_flight`` at once; after a wait, hand the unsent back."""
    if in_flight == 1 or len(chunks) == 1:
        for position, chunk in enumerate(chunks):
            wait = send(call, chunk, gate)
            gate = None  # every later call reads the pacing state afresh
            if wait is not None:
                _hand_back_unsent(call, chunks[position + 1 :], wait)
                return
        return
    stop = threading.Event()
    waits = []

    def one(chunk, gate):
        if stop.is_set():
            return chunk
        try:
            wait = send(call, chunk, gate)
        except DatabaseError:
            connection.close()  # this thread's: the next query opens a new one
            raise
        if wait is not None:
            waits.append(wait)
            stop.set()
        return None

    futures = [_pool(in_flight).submit(one, chunk, gate if position == 0 else None)
               for position, chunk in enumerate(chunks)]
    unsent, errors = [], []
    for future in futures:
        try:
            chunk = future.result()
        except DatabaseError as exc:
            errors.append(exc)
            continue
        if chunk is not None:
            unsent.append(chunk)
    if unsent:
        _hand_back_unsent(call, unsent, waits[0])
    if errors:
        raise errors[0]


def _hand_back_unsent(call, chunks, wait):
    rows = [row for chunk in chunks for same_text in chunk for row in same_text]
    if rows:
        hand_back(call.token, rows, wait.until, wait.reason)


_pools = {}
_pools_lock = threading.Lock()


def _pool(size):
    """The process's pool of ``size`` threads for calls, created after a fork.

    Kept for the process's life, so each thread opens its database connection once.
    """
    key = (os.getpid(), size)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(size, thread_name_prefix="textclass-call")
        return pool


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
