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
