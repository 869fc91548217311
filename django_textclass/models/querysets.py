"""Query helpers for classification requests: what is due, stale, or cached."""

from datetime import timedelta

from django.db import connections, models, transaction
from django.db.models import Case, CharField, F, Q, When
from django.db.models.expressions import RawSQL

from django_textclass.models.rollup import RollupDirtyDay
from django_textclass.models.status import Status
from django_textclass.rollup.days import ROLLED_FIELDS, changed_days, days_of


def among(values, sql_type, using="default"):
    """The right-hand side of an ``__in`` filter over many ``values``, planned as a list.

    On PostgreSQL, ``IN (SELECT unnest(ARRAY[...]))``: the planner knows how many values
    there are and probes an index once per value, even on a table it has never analysed;
    with a plain ``IN (...)`` it may scan an index of every pending row instead. Elsewhere
    the values themselves.
    """
    values = list(values)
    if connections[using].vendor != "postgresql":
        return values
    return RawSQL(f"SELECT unnest(%s::{sql_type}[])", [values])  # noqa: S611 - a fixed type


def model_name():
    """An expression: the name a request's model goes by, its key, or its model id if none.

    The name a registration, a command's ``--model`` or the API's ``model`` gave.
    """
    return Case(
        When(model_key="", then=F("model_id")), default=F("model_key"), output_field=CharField()
    )


class ClassificationRequestQuerySet(models.QuerySet):
    """Queries the pipeline and the sweep run; every one is a single indexed query.

    Its writes (``update``, ``bulk_update``, ``delete``, ``bulk_create``) also mark the past
    days of the daily roll-up that they change
    (:meth:`~django_textclass.models.RollupDirtyDay.mark`), in the write's own transaction.
    Finding those days costs one ``SELECT`` unless the write sets no rolled field, or the
    caller said when its rows were created (:meth:`created_at_among`); the worker does both,
    so its writes to today's rows cost nothing more.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._created_at = None

    def _clone(self):
        clone = super()._clone()
        clone._created_at = self._created_at
        return clone

    def created_at_among(self, moments):
        """This queryset, with the caller's word that its rows were created at ``moments``.

        Its writes then take the days to mark from those moments instead of asking the
        database. Only for a caller that holds the rows it writes (the worker holds the rows it
        claimed); a wrong promise leaves a rolled day stale until ``verify()`` finds it.
        """
        clone = self._chain()
        clone._created_at = frozenset(moments)
        return clone

    def _changed_days(self):
        if self._created_at is not None:
            return days_of(self._created_at)
        return changed_days(self)

    def update(self, **kwargs):
        """``QuerySet.update``, marking the rolled-up days of the rows it changes."""
        self._for_write = True
        if ROLLED_FIELDS.isdisjoint(kwargs):
            return super().update(**kwargs)
        days = self._changed_days() | days_of([kwargs.get("created_at")])
        if not days:
            return super().update(**kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            rows = super().update(**kwargs)
            RollupDirtyDay.mark(days, using=self.db)
        return rows

    update.alters_data = True

    def delete(self):
        """``QuerySet.delete``, marking the rolled-up days of the rows it deletes."""
        if self.query.is_sliced:
            return super().delete()  # which refuses, as Django does
        self._for_write = True
        days = self._changed_days()
        if not days:
            return super().delete()
        with transaction.atomic(using=self.db, savepoint=False):
            result = super().delete()
            RollupDirtyDay.mark(days, using=self.db)
        return result

    delete.alters_data = True
    delete.queryset_only = True

    def bulk_update(self, objs, fields, batch_size=None):
        """``QuerySet.bulk_update``; the objects' own ``created_at`` tell which days to mark."""
        objs = list(objs)
        queryset = self
        if all("created_at" in obj.__dict__ for obj in objs):  # none of them deferred
            queryset = self.created_at_among(obj.created_at for obj in objs)
        return super(ClassificationRequestQuerySet, queryset).bulk_update(
            objs, fields, batch_size=batch_size
        )

    bulk_update.alters_data = True

    def bulk_create(self, objs, *args, **kwargs):
        """``QuerySet.bulk_create``, marking rolled-up days when rows are dated in the past."""
        objs = list(objs)
        days = days_of(obj.created_at for obj in objs)
        if not days:
            return super().bulk_create(objs, *args, **kwargs)
        self._for_write = True
        with transaction.atomic(using=self.db, savepoint=False):
            created = super().bulk_create(objs, *args, **kwargs)
            RollupDirtyDay.mark(days, using=self.db)
        return created

    def unlocked(self):
        """These rows less those another transaction holds, locked until this one ends.

        For the writes that touch rows other runs may be writing at the same moment (lease
        renewals, the sweep): filtered on ``pk__in=qs.unlocked().values("pk")`` inside a
        transaction, they never wait for a row lock, so they can never close a deadlock with
        a completion that waits for them; a row skipped now is taken by the next renewal or
        sweep. Where the database has no ``SKIP LOCKED``, the rows themselves (SQLite has one
        writer at a time).
        """
        if connections[self.db].features.has_select_for_update_skip_locked:
            return self.select_for_update(skip_locked=True)
        return self

    def named(self, names):
        """Requests of the models ``names``, each a key of ``TEXTCLASS["MODELS"]`` or a model id.

        A key finds the requests submitted with it, whatever model or revision it had then;
        a model id those submitted with that id and no key (keys hold no ``/``, so an
        ``owner/name`` id is never taken for a key). A key no longer configured still finds
        its history. Indexed: ``textclass_req_key`` and ``textclass_req_model_dash``.
        """
        names = list(names)
        return self.filter(Q(model_key__in=names) | Q(model_key="", model_id__in=names))

    def due(self, now):
        """Pending requests whose backoff has passed."""
        return self.filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), status=Status.PENDING
        )

    def overdue(self, now, grace_seconds):
        """Pending requests due for longer than the grace period: their wake-up was lost."""
        return self.due(now - timedelta(seconds=grace_seconds))

    def lease_expired(self, now):
        """Running requests whose worker has not finished within its lease."""
        return self.filter(status=Status.RUNNING, lease_expires_at__lt=now)

    def in_flight(self, *, backend, model_id, parameters, hashes, now, revision=""):
        """Requests for these text hashes, backend, model, revision and parameters in a call now.

        Running under a claim whose lease has not run out (a text waiting for its chunks
        has no claim, and a dead worker's lease has run out: neither is in flight).
        """
        return self.filter(
            status=Status.RUNNING,
            claim_token__isnull=False,
            lease_expires_at__gt=now,
            backend=backend,
            model_id=model_id,
            revision=revision,
            text_hash__in=among(hashes, "text", self.db),
            use_cache=True,
            function_to_apply=parameters.function_to_apply or "",
            top_k=parameters.top_k,
        )

    def cached_results(self, *, backend, model_id, parameters, hashes, since, revision=""):
        """Stored answers for these text hashes, backend, model, revision and parameters.

        Newest first.

        Only requests the backend answered itself count (not earlier cache hits), so a
        text classified a thousand times still yields one row per TTL window.

        Args:
            backend: the backend alias that produced the result.
            model_id: the Hub repository id (or a key's endpoint URL).
            parameters: the :class:`~django_textclass.types.Parameters` of the request.
            hashes: text hashes to look for.
            since: oldest ``finished_at`` accepted, or None for no age limit.
            revision: the model revision (``""``: none named); a new revision of a key
                never reuses the answers of the old one.
        """
        queryset = self.filter(
            status=Status.SUCCEEDED,
            reused_from__isnull=True,
            backend=backend,
            model_id=model_id,
            revision=revision,
            text_hash__in=among(hashes, "text", self.db),
            function_to_apply=parameters.function_to_apply or "",
            top_k=parameters.top_k,
        )
        if since is not None:
            queryset = queryset.filter(finished_at__gte=since)
        return queryset.order_by("-finished_at")

    def newest_answers(self, *, backend, model_id, parameters, hashes, since, revision=""):
        """The newest of :meth:`cached_results` for each hash: a list, one row per hash found.

        Each row carries its scores as ``answer_scores``: ``[(label, score), ...]``, best
        first. On PostgreSQL that is one statement, one index probe per hash (``unnest``
        joined ``LATERAL`` to the newest row of ``textclass_req_cache``, its scores
        aggregated alongside), whatever the table's statistics say: on a table not yet
        analysed, the plain query may be planned as a scan of every answered row.
        """
        if connections[self.db].vendor != "postgresql":
            newest = {}
            for row in self.cached_results(
                backend=backend,
                model_id=model_id,
                parameters=parameters,
                hashes=hashes,
                since=since,
                revision=revision,
            ).prefetch_related("scores"):
                newest.setdefault(row.text_hash, row)
            for row in newest.values():
                row.answer_scores = [(score.label, score.score) for score in row.scores.all()]
            return list(newest.values())
        sql, params = self.newest_answers_sql(
            backend=backend,
            model_id=model_id,
            parameters=parameters,
            hashes=hashes,
            since=since,
            revision=revision,
        )
        return list(self.model._default_manager.db_manager(self.db).raw(sql, params))

    def newest_answers_sql(self, *, backend, model_id, parameters, hashes, since, revision=""):
        """:meth:`newest_answers` on PostgreSQL as ``(sql, params)``."""
        hashes = sorted(hashes)
        connection = connections[self.db]
        quote = connection.ops.quote_name
        meta = self.model._meta
        columns = ", ".join(f"newest.{quote(f.column)}" for f in meta.concrete_fields)
        params = [
            hashes,
            Status.SUCCEEDED,
            backend,
            model_id,
            revision,
            parameters.function_to_apply or "",
        ]
        conditions = ["r.top_k IS NULL" if parameters.top_k is None else "r.top_k = %s"]
        params += [] if parameters.top_k is None else [parameters.top_k]
        if since is not None:
            conditions.append("r.finished_at >= %s")
            params.append(meta.get_field("finished_at").get_db_prep_value(since, connection))
        scores = quote(self.model.scores.rel.related_model._meta.db_table)
        sql = (
            f"SELECT {columns}, (SELECT json_agg(json_build_array(s.label, s.score) "  # noqa: S608
            f"ORDER BY s.rank) FROM {scores} AS s WHERE s.request_id = newest.id) "
            f"AS answer_scores FROM unnest(%s::text[]) AS wanted (hash) "
            f"CROSS JOIN LATERAL (SELECT * FROM {quote(meta.db_table)} AS r "
            f"WHERE r.text_hash = wanted.hash AND r.status = %s AND r.reused_from_id IS NULL "
            f"AND r.backend = %s AND r.model_id = %s AND r.revision = %s "
            f"AND r.function_to_apply = %s "
            f"AND {' AND '.join(conditions)} ORDER BY r.finished_at DESC LIMIT 1) AS newest"
        )
        return sql, params
