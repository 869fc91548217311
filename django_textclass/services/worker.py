"""The worker's side: claim requests, answer what the cache and twins can, batch the rest.

Each call and the meaning of its outcome are :mod:`django_textclass.services.calls`; what is
then written to the claimed rows is :mod:`django_textclass.services.settling`'s job.
"""

import logging
import random
import uuid
from collections import defaultdict
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from django_textclass.backends import get_backend
from django_textclass.conf import app_settings
from django_textclass.exceptions import (
    TextClassConfigurationError,
)
from django_textclass.models import (
    ClassificationRequest,
    Status,
)
from django_textclass.services import dispatch, pacing
from django_textclass.services.calls import Call, send
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
        wait = send(call, chunk, gate)
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
