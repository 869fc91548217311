"""Wake-up calls to the workers: the only place the app publishes Celery messages.

A message carries request ids, never text or secrets. Publishing never raises and
never hangs: if the broker is unreachable or frozen the requests stay pending in the
database and the periodic sweep sends them once the broker is back.
"""

import contextlib
import logging
import os
import threading
from functools import partial

from celery import current_app
from django.db import transaction

from django_textclass.conf import app_settings

logger = logging.getLogger("django_textclass.dispatch")

#: Published by name, so this module never imports :mod:`django_textclass.tasks` (which
#: sits above the services that call it).
RUN_BATCH = "django_textclass.run_batch"

# Fail fast when the broker is down: the database row is the queue of record.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                        "interval_max": 0.2}

_local = threading.local()


def on_commit(ids):
    """Send wake-ups for ``ids`` once the current transaction commits."""
    if ids:
        transaction.on_commit(partial(send, list(ids)))


def send(ids, countdown=None):
    """Publish ``run_batch`` messages for ``ids`` now, in chunks of ``BATCH_SIZE``.

    It never blocks for long: the app publishes on a connection of its own, whose every
    socket operation gives up after ``PUBLISH_TIMEOUT`` seconds, whatever the project's
    Celery settings (a broker that accepts connections but never answers would otherwise
    hang ``classify()`` and the REST API with it).

    Returns:
        The number of messages published (0 when the broker refused them).
    """
    size = max(1, app_settings.BATCH_SIZE)
    options = {"retry_policy": PUBLISH_RETRY_POLICY}
    if app_settings.QUEUE:
        options["queue"] = app_settings.QUEUE
    if countdown:
        options["countdown"] = max(0.0, countdown)
    sent = 0
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        try:
            current_app.send_task(RUN_BATCH, args=[chunk], connection=_connection(), **options)
        except Exception as exc:  # noqa: BLE001 - any broker failure must not reach the caller
            _drop_connection()
            logger.warning(
                "Could not publish a wake-up for %d request(s) (%s: %s); "
                "the sweep will send them.", len(chunk), type(exc).__name__, exc,
            )
            return sent
        sent += 1
    return sent


def timeouts(transport, seconds):
    """Connection arguments that bound every socket operation of ``transport``."""
    if transport in ("redis", "rediss"):
        return {"transport_options": {"socket_timeout": seconds,
                                      "socket_connect_timeout": seconds}}
    if transport in ("amqp", "pyamqp", "amqps"):
        return {"connect_timeout": seconds,
                "transport_options": {"read_timeout": seconds, "write_timeout": seconds}}
    return {"connect_timeout": seconds}


def _connection():
    """This thread's publishing connection (one per process and thread; rebuilt after a fork)."""
    conn = getattr(_local, "connection", None)
    if conn is None or _local.pid != os.getpid():
        app = current_app
        transport = app.connection_for_write().transport_cls
        conn = app.connection_for_write(**timeouts(transport, app_settings.PUBLISH_TIMEOUT))
        _local.connection, _local.pid = conn, os.getpid()
    return conn


def _drop_connection():
    """Forget a connection that failed; the next publish opens a new one."""
    conn, _local.connection = getattr(_local, "connection", None), None
    if conn is not None:
        with contextlib.suppress(Exception):  # it is being thrown away
            conn.collect(socket_timeout=0)  # release it without talking to the broker
