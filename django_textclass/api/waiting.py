"""Waiting for the worker from a web request: poll the database row, nothing else.

The row is the truth (the worker writes it; no result backend is involved), so
"wait for the result" means reading its status until it is final or time is up.
"""

import time

from django.db import transaction

from django_textclass.conf import app_settings
from django_textclass.models import TERMINAL_STATUSES, ClassificationRequest


def can_wait():
    """Whether waiting can succeed: not inside a transaction.

    Inside one (``ATOMIC_REQUESTS``, a test's transaction) the requests are not
    committed yet, so no worker has been woken and none could see them: waiting
    would only hold the transaction open. The endpoints then answer at once.
    """
    return not transaction.get_connection().in_atomic_block


def wait_until_finished(pks, timeout):
    """Poll until every request in ``pks`` is final, for at most ``timeout`` seconds.

    Returns:
        True if they all reached a final status in time, else False (also at once
        when ``timeout`` is 0 or :func:`can_wait` is False).
    """
    if not pks or timeout <= 0 or not can_wait():
        return False
    deadline = time.monotonic() + timeout
    interval = max(0.01, float(app_settings.API_WAIT_POLL_SECONDS))
    while True:
        unfinished = ClassificationRequest.objects.filter(pk__in=pks).exclude(
            status__in=TERMINAL_STATUSES
        )
        if not unfinished.exists():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval, remaining))
