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
            with _borrowed() as connection:
                # No result is ever read: the row is the result (and no backend is asked).
                current_app.send_task(RUN_BATCH, args=[chunk], connection=connection,
                                      ignore_result=True, **options)
        except Exception as exc:  # noqa: BLE001 - any broker failure must not reach the caller
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


#: Publishing connections kept open for reuse, per process.
MAX_IDLE_CONNECTIONS = 8
_idle = []
_idle_lock = threading.Lock()
_idle_pid = [os.getpid()]


@contextlib.contextmanager
def _borrowed():
    """A publishing connection of this process, for one thread at a time.

    Connections are reused across threads (a server under ASGI runs each request in a
    thread of its own: one connection per thread would open one per request) and rebuilt
    after a fork; one that fails is thrown away, and the next publish opens a new one.
    """
    with _idle_lock:
        if _idle_pid[0] != os.getpid():
            _idle.clear()  # the parent's sockets
            _idle_pid[0] = os.getpid()
        connection = _idle.pop() if _idle else None
    if connection is None:
        app = current_app
        transport = app.connection_for_write().transport_cls
        connection = app.connection_for_write(
            **timeouts(transport, app_settings.PUBLISH_TIMEOUT))
    try:
        yield connection
    except BaseException:
        _discard(connection)
        raise
    with _idle_lock:
        if _idle_pid[0] == os.getpid() and len(_idle) < MAX_IDLE_CONNECTIONS:
            _idle.append(connection)
            return
    _discard(connection)


def drop_connections():
    """Close this process's idle publishing connections; the next publish opens a new one."""
    with _idle_lock:
        idle, _idle[:] = list(_idle), []
    for connection in idle:
        _discard(connection)


def _discard(connection):
    with contextlib.suppress(Exception):  # it is being thrown away
        connection.collect(socket_timeout=0)  # release it without talking to the broker
