"""The worker's two hot writes as set operations: the claim, and the completion of a call.

On PostgreSQL each is one statement whatever the number of rows: the claim is an ``UPDATE``
of the rows a ``SELECT ... FOR UPDATE SKIP LOCKED`` picked, ``RETURNING`` them; the
completion updates every row from one ``VALUES`` list and inserts all their scores in the
same statement (a data-modifying ``WITH``), which also names the rows to the web requests
waiting for them (``NOTIFY``, see :mod:`django_textclass.services.waiting`). Elsewhere the
ORM does the same work in a few statements. Both guard as the ORM forms do: only due
pending rows are claimed, and only rows still running under the run's token are completed.
"""

from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F

from django_textclass.conf import app_settings
from django_textclass.models import ClassificationRequest, ClassificationScore, Status
from django_textclass.models.rollup import RollupDirtyDay
from django_textclass.rollup.days import days_of
from django_textclass.services import waiting

#: Rows per completion statement (PostgreSQL takes at most 65,535 parameters).
COMPLETE_SLICE = 500


def set_based():
    """Whether the one-statement forms are used (PostgreSQL)."""
    return connection.vendor == "postgresql"


def claim_rows(candidates, token, now):
    """Claim the due pending rows ``candidates`` selects for the run ``token``.

    Args:
        candidates: a queryset of due pending requests (filtered, ordered, maybe sliced).
        token: the run's claim token.
        now: the time of the claim.

    Returns:
        The claimed rows, oldest first.
    """
    return _claim(lambda lease: claim_sql(candidates, token, now, lease), candidates, token, now)


def claim_ids(ids, token, now):
    """Claim for the run ``token`` the due pending rows among ``ids``; as :func:`claim_rows`.

    On PostgreSQL each id is looked up by the primary key (see :func:`claim_ids_sql`).
    """
    candidates = ClassificationRequest.objects.filter(pk__in=ids).due(now).order_by()
    return _claim(lambda lease: claim_ids_sql(ids, token, now, lease), candidates, token, now)


def _claim(returning, candidates, token, now):
    """One ``UPDATE ... RETURNING`` built by ``returning(lease)`` on PostgreSQL, else the ORM."""
    lease = now + timedelta(seconds=app_settings.LEASE_SECONDS)
    with transaction.atomic():
        if set_based():
            sql, params = returning(lease)
            rows = list(ClassificationRequest.objects.raw(sql, params))
            _mark_days(rows)
        else:
            rows = _claim_orm(candidates, token, now, lease)  # its update marks them
    return sorted(rows, key=lambda row: row.pk)


def _claim_orm(candidates, token, now, lease):
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True)
    created = dict(candidates.values_list("pk", "created_at"))
    if not created:
        return []
    # Guarded again: without row locks (SQLite) the UPDATE alone decides.
    ClassificationRequest.objects.filter(pk__in=created).due(now).created_at_among(
        created.values()
    ).update(
        status=Status.RUNNING,
        claim_token=token,
        attempts=F("attempts") + 1,
        started_at=now,
        finished_at=None,
        lease_expires_at=lease,
    )
    return list(
        ClassificationRequest.objects.filter(
            pk__in=created, claim_token=token, status=Status.RUNNING
        )
    )


def claim_ids_sql(ids, token, now, lease):
    """The PostgreSQL claim of ``ids`` as ``(sql, params)`` (also read by ``benchmarks/plans.py``).

    Each id is probed on the primary key by a ``LATERAL`` subquery the planner cannot
    flatten (``OFFSET 0``), which locks its row with ``SKIP LOCKED``: on a table never
    analysed (right after a bulk import) a plain ``id IN (...) AND status = 'pending'`` may
    be planned as a walk of every pending row through the status index instead.
    """
    quote = connection.ops.quote_name
    table = quote(ClassificationRequest._meta.db_table)
    picked = (
        f"SELECT picked.id FROM unnest(%s::bigint[]) AS wanted (id) "  # noqa: S608
        f"CROSS JOIN LATERAL (SELECT r.id FROM {table} AS r WHERE r.id = wanted.id "
        f"AND r.status = %s AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= %s) "
        f"OFFSET 0 FOR UPDATE SKIP LOCKED) AS picked"
    )
    return _claim_update(
        picked, [list(ids), Status.PENDING, _prep("next_attempt_at", now)], token, now, lease
    )


def claim_sql(candidates, token, now, lease):
    """The PostgreSQL claim as ``(sql, params)`` (also read by ``benchmarks/plans.py``)."""
    picked, picked_params = (
        candidates.select_for_update(skip_locked=True).values("pk").query.sql_with_params()
    )
    return _claim_update(picked, list(picked_params), token, now, lease)


def _claim_update(picked, picked_params, token, now, lease):
    """``UPDATE`` the rows the query ``picked`` selects (and locks) to running; ``RETURNING``."""
    meta = ClassificationRequest._meta
    quote = connection.ops.quote_name
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608
        f"status = %s, claim_token = %s, attempts = attempts + 1, started_at = %s, "
        f"finished_at = NULL, lease_expires_at = %s "
        f"WHERE id IN ({picked}) "
        f"RETURNING {', '.join(quote(field.column) for field in meta.concrete_fields)}"
    )
    params = [
        Status.RUNNING,
        _prep("claim_token", token),
        _prep("started_at", now),
        _prep("lease_expires_at", lease),
        *picked_params,
    ]
    return sql, params


def complete_rows(token, answers, now, backend_ms, reused_from):
    """Mark the rows of ``answers`` the run still owns succeeded and store their scores.

    Call inside a transaction. ``answers`` are ``(row, ranking)`` pairs. A row's scores are
    written only here, by its one transition to ``succeeded`` (which is final), so there are
    none to replace; the unique ``(request, rank)`` constraint would refuse a second set.

    Returns:
        The pks of the rows completed.
    """
    if set_based():
        done = set()
        for start in range(0, len(answers), COMPLETE_SLICE):
            done |= _complete_returning(
                token, answers[start : start + COMPLETE_SLICE], now, backend_ms, reused_from
            )
        _mark_days(row for row, _ in answers if row.pk in done)
    else:
        done = _complete_orm(token, answers, now, backend_ms, reused_from)  # marks them
    return done


def _complete_orm(token, answers, now, backend_ms, reused_from):
    owned = set(
        ClassificationRequest.objects.select_for_update()
        .filter(pk__in=[row.pk for row, _ in answers], claim_token=token, status=Status.RUNNING)
        .values_list("pk", flat=True)
    )
    mine = [(row, ranking) for row, ranking in answers if row.pk in owned]
    if not mine:
        return owned
    ClassificationScore.objects.bulk_create(
        ClassificationScore(request_id=row.pk, rank=rank, label=item.label, score=item.score)
        for row, ranking in mine
        for rank, item in enumerate(ranking.scores)
    )
    for row, ranking in mine:
        _succeeded(row, ranking, now, backend_ms, reused_from.get(row.pk))
    # The objects carry their created_at: the roll-up's days need no query.
    ClassificationRequest.objects.bulk_update(
        [row for row, _ in mine],
        [
            "status",
            "top_label",
            "top_score",
            "finished_at",
            "backend_ms",
            "reused_from",
            "error_code",
            "error_message",
            "lease_expires_at",
            "next_attempt_at",
            "claim_token",
            "batch_limit",
        ],
    )
    return owned


def _complete_returning(token, answers, now, backend_ms, reused_from):
    sql, params = complete_sql(token, answers, now, backend_ms, reused_from)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        done = {pk for (pk,) in cursor.fetchall()}
    for row, ranking in answers:
        if row.pk in done:
            _succeeded(row, ranking, now, backend_ms, reused_from.get(row.pk))
    return done


def complete_sql(token, answers, now, backend_ms, reused_from):
    """The PostgreSQL completion as ``(sql, params)`` (also read by ``benchmarks/plans.py``)."""
    meta, score_meta = ClassificationRequest._meta, ClassificationScore._meta
    quote = connection.ops.quote_name
    rows_sql = ", ".join(["(%s::bigint, %s, %s::double precision, %s::bigint)"] * len(answers))
    rows_params = []
    scores = []
    for row, ranking in answers:
        rows_params += [row.pk, ranking.top.label, ranking.top.score, reused_from.get(row.pk)]
        scores += [
            (row.pk, rank, item.label, item.score) for rank, item in enumerate(ranking.scores)
        ]
    scores_sql = ", ".join(["(%s::bigint, %s::smallint, %s, %s::double precision)"] * len(scores))
    table = quote(meta.db_table)
    # As in the claim: names from the model's metadata, every value a placeholder.
    sql = (
        f"WITH answer (id, top_label, top_score, reused_from_id) AS (VALUES {rows_sql}), "  # noqa: S608
        f"done AS (UPDATE {table} AS r SET status = %s, top_label = answer.top_label, "
        f"top_score = answer.top_score, reused_from_id = answer.reused_from_id, "
        f"finished_at = %s, backend_ms = %s, error_code = '', error_message = '', "
        f"lease_expires_at = NULL, next_attempt_at = NULL, claim_token = NULL, "
        f"batch_limit = NULL FROM answer "
        f"WHERE r.id = answer.id AND r.claim_token = %s AND r.status = %s RETURNING r.id), "
        f"score (request_id, rank, label, score) AS (VALUES {scores_sql}), "
        f"stored AS (INSERT INTO {quote(score_meta.db_table)} (request_id, rank, label, score) "
        f"SELECT score.* FROM score JOIN done ON done.id = score.request_id), "
        # Waiting web requests are told at commit (services.waiting); joined below, so it runs.
        f"named AS (SELECT pg_notify(%s, CASE WHEN length(ids) <= %s THEN ids ELSE %s END) "
        f"FROM (SELECT string_agg(id::text, ',') AS ids FROM done) AS listed "
        f"WHERE ids IS NOT NULL) "
        f"SELECT id FROM done, named"
    )
    params = [
        *rows_params,
        Status.SUCCEEDED,
        _prep("finished_at", now),
        backend_ms,
        _prep("claim_token", token),
        Status.RUNNING,
        *[v for s in scores for v in s],
        waiting.CHANNEL,
        waiting.MAX_PAYLOAD,
        waiting.EVERYONE,
    ]
    return sql, params


def _succeeded(row, ranking, now, backend_ms, reused):
    """The in-memory row as the completion left it in the database."""
    row.status = Status.SUCCEEDED
    row.top_label = ranking.top.label
    row.top_score = ranking.top.score
    row.finished_at = now
    row.backend_ms = backend_ms
    row.reused_from_id = reused
    row.error_code = row.error_message = ""
    row.lease_expires_at = row.next_attempt_at = row.claim_token = row.batch_limit = None


def attach_scores(row, ranking):
    """Give a completed row its scores as stored (``row.labels``), without reading them back.

    For the signals' receivers; the completion calls it only when one listens.
    """
    scores = row.scores.all()
    scores._result_cache = [
        ClassificationScore(request_id=row.pk, rank=rank, label=item.label, score=item.score)
        for rank, item in enumerate(ranking.scores)
    ]
    scores._prefetch_done = True
    row._prefetched_objects_cache = {"scores": scores}


def _mark_days(rows):
    """Rows of a past day (a backlog older than midnight) change that day's roll-up."""
    days = days_of(row.created_at for row in rows)
    if days:
        RollupDirtyDay.mark(days, using=connection.alias)


def _prep(name, value):
    """The database value of ``value`` for the request field ``name``."""
    return ClassificationRequest._meta.get_field(name).get_db_prep_save(value, connection)
