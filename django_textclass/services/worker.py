"""The worker's side: claim requests, stream each group's calls, topped up as they go.

What a run holds and what it may skip (cache hits, twins in flight) is
:mod:`django_textclass.services.work`; each call and the meaning of its outcome are
:mod:`django_textclass.services.calls`; what is then written to the claimed rows is
:mod:`django_textclass.services.settling`'s job.
"""

import logging
import math
import os
import threading
import time
import uuid
from collections import defaultdict, deque
from concurrent import futures
from contextlib import nullcontext
from datetime import timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from django_textclass import catalog
from django_textclass.backends import backend_config, get_backend
from django_textclass.backends.base import positive_number
from django_textclass.conf import app_settings
from django_textclass.exceptions import TextClassConfigurationError
from django_textclass.models import (
    ClassificationRequest,
    Status,
)
from django_textclass.services import bulk, dispatch, pacing, recovery
from django_textclass.services.calls import Call, heartbeat, send
from django_textclass.services.settling import (
    fail,
    hand_back,
)
from django_textclass.services.work import TWIN_PATIENCE, Work

logger = logging.getLogger("django_textclass")

#: The failure of a row whose stored model id is not a Hub repository id, nor an endpoint URL
#: a key configures (never sent).
INVALID_MODEL_ID = "invalid_model_id"
INVALID_MODEL_ID_MESSAGE = (
    "the stored model id is not a valid Hugging Face repository id (owner/name); nothing was sent"
)


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
    return token, bulk.claim_ids(ids, token, now)


def claim_like(token, like, limit, *, now=None):
    """Claim for the run ``token`` up to ``limit`` more due rows of the same work as ``like``.

    Same backend, model, revision and parameters, the longest due first, whichever message
    woke them: a run fills its calls with what is waiting instead of sending the part-filled
    batches its own message holds. The message of a row taken here finds it no longer pending.
    """
    now = now or timezone.now()
    candidates = (
        ClassificationRequest.objects.due(now)
        .filter(
            backend=like.backend,
            model_id=like.model_id,
            revision=like.revision,
            use_cache=like.use_cache,
            function_to_apply=like.function_to_apply,
            top_k=like.top_k,
        )
        .order_by("next_attempt_at")[:limit]
    )
    return bulk.claim_rows(candidates, token, now)


def claim_waiting(token, limit, *, now=None):
    """Claim for the run ``token`` up to ``limit`` due rows of any work, the longest due first."""
    now = now or timezone.now()
    candidates = ClassificationRequest.objects.due(now).order_by("next_attempt_at")[:limit]
    return bulk.claim_rows(candidates, token, now)


def process(ids):
    """Claim and classify the requests ``ids``; the body of the worker task.

    Requests are grouped by backend, model, revision and parameters; each group is topped up with
    other waiting requests of the same kind to fill the backend's calls; texts already
    answered (same text, backend, model, revision and parameters, within ``CACHE_TTL``) reuse the
    stored result; the rest go to the backend in calls of at most its batch size, one
    call per distinct text, up to ``CALLS_IN_FLIGHT`` of them at once. Safe to run twice
    with the same ids.

    Returns:
        The number of requests this run claimed.
    """
    token, rows = claim(ids)
    if not rows and ids:
        # Another run took this message's rows (a run gathers the waiting work of its
        # model): serve what waits now instead, so that a burst of wake-ups does not leave
        # work queued behind runs that find nothing.
        rows = claim_waiting(token, app_settings.BATCH_SIZE)
    groups = defaultdict(list)
    for row in rows:
        key = (
            row.backend,
            row.model_id,
            row.revision,
            row.function_to_apply,
            row.top_k,
            row.use_cache,
        )
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


def _process_group(token, rows):
    """Classify one group of claimed rows; returns how many more rows it claimed."""
    first = rows[0]
    alias, model_id, parameters, use_cache = (
        first.backend,
        first.model_id,
        first.parameters,
        first.use_cache,
    )
    if not catalog.may_send(model_id):
        # submit() checked it, but a row may come from the ORM, a fixture or a bulk import;
        # the id becomes part of a URL, so a bad one never reaches a backend (an endpoint URL
        # only when a key of the site's own TEXTCLASS["MODELS"] names it).
        logger.error(
            "Stored model id %r is not a Hub repository id; failing %d request(s)",
            model_id[:200],
            len(rows),
        )
        fail(token, rows, code=INVALID_MODEL_ID, message=INVALID_MODEL_ID_MESSAGE)
        return 0
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
    work = Work(
        token,
        alias,
        model_id,
        parameters,
        use_cache and app_settings.CACHE_TTL != 0,
        revision=first.revision,
    )
    work.add(rows)
    threads = _threads_allowed()
    slots = threading.BoundedSemaphore(in_flight) if threads else nullcontext()
    call = Call(token, backend, model_id, parameters, use_cache, slots, revision=first.revision)
    return _Stream(call, work, first, in_flight, size, gate, threads).run()


#: Seconds a run keeps topping its calls up with waiting work before it lets the next
#: message in (the calls already out are then finished).
STREAM_SECONDS = 5.0
#: At most this many claims per top-up (each also costs a cache and a twin query).
GATHER_ROUNDS = 4
#: Seconds between a run's looks for new work while a call slot is free and calls are out.
TRICKLE_POLL = 0.02


class _Stream:
    """One group's calls, ``in_flight`` of them out at once, topped up while they are out.

    Whenever no call is left to send, the next ones are claimed (the same model and
    parameters, oldest first) while the last are still out, so the database work of a
    run overlaps its waits on the API and the calls follow each other without a gap;
    each run keeps this up for :data:`STREAM_SECONDS`. While a call slot is free, it looks
    for new work every :data:`TRICKLE_POLL` seconds, so requests that arrive one by one
    share calls instead of waiting for the next message's run. A wait the pacing state
    imposes stops it: what was not sent goes back, unspent. On SQLite and inside a
    transaction the calls go one at a time in the run's own thread.
    """

    def __init__(self, call, work, like, in_flight, size, gate, threads):
        self.call, self.work, self.like = call, work, like
        self.in_flight, self.size, self.gate = in_flight, size, gate
        # With threads, twice as many calls are under way as are out: while one call's
        # answer is stored, the next is already out (``call.slots`` holds the difference).
        self.under_way = 2 * in_flight if threads else 1
        self.threads = threads
        self.exhausted = False
        self.claimed = 0
        self.deadline = time.monotonic() + STREAM_SECONDS

    def run(self):
        """Send everything; returns how many more rows the run claimed on the way."""
        pool = _pool(self.under_way) if self.threads else _Inline()
        queue = deque(self._top_up(first=True))
        out = {}
        wait, errors = None, []
        while True:
            while queue and len(out) < self.under_way and wait is None and not errors:
                chunk = queue.popleft()
                out[pool.submit(self._send, chunk, self.gate)] = chunk
                self.gate = None  # every later call reads the pacing state afresh
            if (
                not queue
                and wait is None
                and not errors
                and (self._may_top_up() or self.work.by_hash)
            ):
                queue.extend(self._top_up(busy=len(out) >= self.in_flight))
                if queue:
                    continue
            if not out:
                break
            # With a call slot free, look for new work again soon: requests that trickle in
            # (the drop-in endpoint's) join the calls while the last ones are still out.
            free = len(out) < self.under_way and self.threads
            done, _ = futures.wait(
                out, timeout=TRICKLE_POLL if free else None, return_when=futures.FIRST_COMPLETED
            )
            self.exhausted = False
            for future in done:
                del out[future]
                try:
                    wait = future.result() or wait
                except DatabaseError as exc:
                    errors.append(exc)
        if wait is not None:
            # Unsent: the calls queued, and the part-filled batch kept back while every
            # slot was busy (claimed rows too: left out, they would wait for their lease).
            _hand_back_unsent(self.call, [*queue, self.work.take()], wait)
        if not errors:
            # In a transaction (a test's) no other run can store the answer meanwhile.
            patience = 0 if connection.in_atomic_block else TWIN_PATIENCE
            self.work.settle_followers(patience)
        if errors:
            raise errors[0]
        return self.claimed

    def _may_top_up(self):
        return not self.exhausted and time.monotonic() < self.deadline

    def _top_up(self, busy=False, first=False):
        """The next calls: what the work holds, topped up to fill every call under way.

        While every call slot is ``busy``, a part-filled batch is kept back: what arrives
        before a slot frees fills it, instead of going out in a call of its own. The
        ``first`` calls of a run go as soon as one batch is full (what fills the other slots
        is claimed while they are out); their part-filled rest waits for the next top-up.
        """
        # A stream may last STREAM_SECONDS: the sweep it owes does not wait for its end.
        recovery.sweep_if_due()
        target = (1 if first else self.under_way) * self.size
        for _ in range(GATHER_ROUNDS if self._may_top_up() else 0):
            distinct = len(self.work.by_hash)
            if first and distinct >= target:
                break
            missing = target - distinct if distinct < target else -distinct % self.size
            if missing == 0 or self.exhausted:
                break
            # Ask for more rows than texts missing when the rows so far held duplicates.
            wanted = math.ceil(missing / max(self.work.new_texts_share, 0.25))
            more = claim_like(self.work.token, self.like, wanted)
            self.claimed += len(more)
            self.exhausted = len(more) < wanted
            self.work.add(more)
        whole = busy or (first and len(self.work.by_hash) >= self.size)
        texts = self.work.take(whole_batches_of=self.size if whole else None)
        return _chunks(texts, self.call.backend.batch_size, self.size)

    def _send(self, chunk, gate):
        try:
            return send(self.call, chunk, gate)
        except DatabaseError:
            if self.threads:
                connection.close()  # this thread's: its next query opens a new one
            raise


class _Inline:
    """An executor that runs each call at once, in the caller's thread."""

    def submit(self, function, *args):
        future = futures.Future()
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, as a pool would
            future.set_exception(exc)
        return future


def calls_in_flight(alias, backend):
    """How many calls one run keeps out at once for backend ``alias`` (``CALLS_IN_FLIGHT``)."""
    value = backend_config(alias).get("CALLS_IN_FLIGHT", backend.calls_in_flight)
    value = positive_number(alias, "CALLS_IN_FLIGHT", value, int)
    return 1 if not _threads_allowed() else value


def _threads_allowed():
    """Whether calls may go from threads of their own, with connections of their own.

    Not on SQLite, which serialises writers, nor inside a transaction, whose rows other
    connections cannot see (the tests' ``TestCase``): there one call goes at a time, in the
    run's own thread.
    """
    return connection.vendor != "sqlite" and not connection.in_atomic_block


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
            pool = futures.ThreadPoolExecutor(size, thread_name_prefix="textclass-call")
            _pools[key] = pool
        return pool


def close_pools():
    """Close the call threads' database connections and stop the threads.

    For a process that is about to drop its database (a test run, a benchmark): the threads
    keep their connections open between tasks otherwise.
    """
    with _pools_lock:
        pools = [pool for (pid, _), pool in _pools.items() if pid == os.getpid()]
        _pools.clear()
    for pool in pools:
        size = pool._max_workers
        barrier = threading.Barrier(size)  # one closing per thread: none takes two
        for _ in range(size):
            pool.submit(_close_connection, barrier)
        pool.shutdown(wait=True)


def _close_connection(barrier):
    connection.close()
    barrier.wait(timeout=30)


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
    logger.warning(
        "Database error during a worker run (%s: %s); handing its requests back",
        type(exc).__name__,
        exc,
    )
    connection.close()
    try:
        owned = list(ClassificationRequest.objects.filter(claim_token=token, status=Status.RUNNING))
        hand_back(token, owned, timezone.now() + timedelta(seconds=1), "database_error")
    except DatabaseError:
        logger.warning(
            "The database is still unreachable; the sweep will requeue the "
            "requests when their lease runs out"
        )
        connection.close()


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
