"""What the service tests share: reading rows back, letting time pass, a transient error."""

import threading
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from django_textclass import dispatch, services
from django_textclass.exceptions import TransientBackendError
from django_textclass.models import BackendPace, ClassificationRequest, ClassificationScore

#: The real publisher, taken before any test replaces it.
REAL_SEND = dispatch.send
MODEL = "acme/sentiment"


def fresh(request):
    return ClassificationRequest.objects.get(pk=request.pk)


def pks(requests):
    return [request.pk for request in requests]


def make_due(*requests):
    """Let time pass: the requests' backoff is over, and so is any wait of the backends."""
    past = timezone.now() - timedelta(seconds=1)
    ClassificationRequest.objects.filter(pk__in=pks(requests)).update(next_attempt_at=past)
    BackendPace.objects.filter(not_before__isnull=False).update(not_before=past)


def scores_of(request):
    return list(
        ClassificationScore.objects.filter(request_id=request.pk)
        .order_by("rank")
        .values_list("rank", "label", "score")
    )


def transient(message="HTTP 502 from http://api", code="http_502", **kwargs):
    return TransientBackendError(message, code=code, **kwargs)


class ProcessThread(threading.Thread):
    """``services.process(ids)`` in a thread of its own, as another worker run would be.

    The thread uses, and closes at its end, a database connection of its own (so only
    under ``transaction=True``: it cannot see a test's transaction). ``claimed`` is what
    ``process()`` returned.
    """

    def __init__(self, ids):
        super().__init__()
        self.ids, self.claimed = ids, None

    def run(self):
        try:
            self.claimed = services.process(self.ids)
        finally:
            connection.close()  # this thread's


class RowLock:
    """Rows held by another transaction (another run completing them), until the ``with`` ends.

    A thread of its own opens a transaction, locks the rows ``FOR UPDATE`` and waits; leaving
    the block rolls it back. Only under ``transaction=True`` and on PostgreSQL (row locks).
    """

    def __init__(self, pks):
        self.pks = list(pks)
        self._locked = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self):
        from django.db import transaction

        try:
            with transaction.atomic():
                list(
                    ClassificationRequest.objects.select_for_update()
                    .filter(pk__in=self.pks)
                    .values_list("pk", flat=True)
                )
                self._locked.set()
                self._release.wait(30)
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        assert self._locked.wait(10), "could not lock the rows"
        return self

    def __exit__(self, *exc_info):
        self._release.set()
        self._thread.join(10)


def finishes(function, *args, timeout=5):
    """Run ``function(*args)`` in a thread (closing its connection); whether it returned
    within ``timeout`` seconds, and what it returned."""
    result = {}

    def run():
        try:
            result["value"] = function(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), result.get("value")
