"""Waiting for the worker from a web request: the rows are read until they are final.

The row is the truth (the worker writes it; no result backend is involved), so "wait for
the result" means reading its status until it is final or time is up. On PostgreSQL the
worker's commit wakes the waiting request at once (``NOTIFY``; see
:mod:`django_textclass.services.waiting`); elsewhere the rows are read every
``API_WAIT_POLL_SECONDS``.
"""

from django.db import transaction

from django_textclass.services import waiting


def can_wait():
    """Whether waiting can succeed: not inside a transaction.

    Inside one (``ATOMIC_REQUESTS``, a test's transaction) the requests are not
    committed yet, so no worker has been woken and none could see them: waiting
    would only hold the transaction open. The endpoints then answer at once.
    """
    return not transaction.get_connection().in_atomic_block


def wait_until_finished(pks, timeout):
    """Block until every request in ``pks`` is final, for at most ``timeout`` seconds.

    Returns:
        True if they all reached a final status in time, else False (also at once
        when ``timeout`` is 0 or :func:`can_wait` is False).
    """
    if not pks or timeout <= 0 or not can_wait():
        return False
    return waiting.wait_until_finished(pks, timeout)
