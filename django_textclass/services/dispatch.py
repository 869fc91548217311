"""Wake-up calls to the workers: the only place the app publishes Celery messages.

A message carries request ids, never text or secrets. Publishing never raises and
never hangs: if the broker is unreachable or frozen the requests stay pending in the
database and the periodic sweep sends them once the broker is back.

The wake-ups of new rows (:func:`on_commit`) are published by a thread of the process
that committed them, which gathers what commits close together into one message: the
committing thread never waits on the broker, and a busy web process sends a few full
messages instead of one per request, each of which a worker claims in one run.
"""

import atexit
import contextlib
import logging
import os
import threading
import time
from functools import partial

from celery import current_app
from django.db import transaction

from django_textclass.conf import app_settings

logger = logging.getLogger("django_textclass.dispatch")

#: Published by name, so this module never imports :mod:`django_textclass.tasks` (which
#: sits above the services that call it).
RUN_BATCH = "django_textclass.run_batch"

# Fail fast when the broker is down: the database row is the queue of record.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}


def on_commit(ids):
    """Have wake-ups for ``ids`` published once the current transaction commits.

    After the commit (at once in autocommit mode) the ids go to this process's publishing
    thread, which sends them within ``PUBLISH_INTERVAL`` seconds; nothing here waits on
    the broker. A process that ends first leaves them to the sweep, as a broker outage
    would; a normal exit publishes them (:func:`flush`).
    """
    if ids:
        transaction.on_commit(partial(_gathered.put, list(ids)))


def flush(timeout=None):
    """Publish the wake-ups gathered so far now, and wait until they are sent or refused.

    For tests, and for code that must know its wake-ups have left before it goes on.

    Returns:
        True, or False if ``timeout`` seconds passed first.
    """
    return _gathered.flush(timeout)


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
                current_app.send_task(
                    RUN_BATCH, args=[chunk], connection=connection, ignore_result=True, **options
                )
        except Exception as exc:  # noqa: BLE001 - any broker failure must not reach the caller
            logger.warning(
                "Could not publish a wake-up for %d request(s) (%s: %s); the sweep will send them.",
                len(chunk),
                type(exc).__name__,
                exc,
            )
            return sent
        sent += 1
    return sent


def timeouts(transport, seconds):
    """Connection arguments that bound every socket operation of ``transport``."""
    if transport in ("redis", "rediss"):
        return {"transport_options": {"socket_timeout": seconds, "socket_connect_timeout": seconds}}
    if transport in ("amqp", "pyamqp", "amqps"):
        return {
            "connect_timeout": seconds,
            "transport_options": {"read_timeout": seconds, "write_timeout": seconds},
        }
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
        connection = app.connection_for_write(**timeouts(transport, app_settings.PUBLISH_TIMEOUT))
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


class _Gatherer:
    """The after-commit wake-ups of this process, and the thread that publishes them.

    The thread sends at most one message per ``PUBLISH_INTERVAL`` (a batch larger than
    ``BATCH_SIZE`` in several): ids arriving after a quiet spell go at once, ids arriving
    within the interval of the last message wait for its end and go together.
    """

    def __init__(self):
        self._reset()
        # A forked child (a prefork web server, a Celery worker process) has none of the
        # parent's threads: it starts empty and opens its own. The parent sends its own ids.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self):
        self._changed = threading.Condition()
        self._ids = []
        self._publishing = False
        self._hurry = 0
        self._last = float("-inf")
        self._thread = None

    def put(self, ids):
        with self._changed:
            self._ids.extend(ids)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="textclass-wake-ups", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._hurry += 1
            self._changed.notify_all()
            try:
                while self._ids or self._publishing:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._changed.wait(remaining)
                return True
            finally:
                self._hurry -= 1

    def _run(self):
        atexit.register(self._at_exit)
        while True:
            with self._changed:
                while not self._ids:
                    self._changed.wait()
                while not self._hurry:
                    pause = self._last + app_settings.PUBLISH_INTERVAL - time.monotonic()
                    if pause <= 0:
                        break
                    self._changed.wait(pause)  # more ids may come meanwhile: they go too
                ids, self._ids = self._ids, []
                self._publishing, self._last = True, time.monotonic()
            try:
                send(ids)
            except Exception:  # pragma: no cover - send() swallows broker errors itself
                logger.exception(
                    "Publishing %d wake-up(s) failed; the sweep will send them.", len(ids)
                )
            finally:
                with self._changed:
                    self._publishing = False
                    self._changed.notify_all()

    def _at_exit(self):
        # Wake-ups still gathered when the interpreter exits (a script that called
        # classify()): send them now, for no longer than a refused publish takes.
        self.flush(timeout=3 * app_settings.PUBLISH_TIMEOUT)


_gathered = _Gatherer()
