"""Waiting for requests to become final, woken by the transactions that finish them.

On PostgreSQL, the transaction that makes requests final also names them on the channel
:data:`CHANNEL` (``NOTIFY``; the worker's completion does it inside its one statement, see
:mod:`django_textclass.services.bulk`). PostgreSQL delivers a notification when, and only
when, its transaction commits. One thread per process listens (:class:`Listener`, while
anyone waits) and tells each waiter which of its requests a notification names: only rows
that became final are named, so those are not read again.

The rows stay the truth: a waiter also reads them every :data:`SAFETY_POLL` seconds while
the listener is connected (a notification lost with a broken connection delays an answer,
never loses it), and every ``API_WAIT_POLL_SECONDS`` where nothing listens (SQLite, the
psycopg2 driver, a listener that cannot connect).

Both kinds of caller are served: :func:`wait_until_finished` blocks its thread (WSGI
views); :func:`await_finished` is a coroutine that holds no thread while it waits (the
drop-in endpoint under ASGI).
"""

import asyncio
import contextlib
import inspect
import logging
import os
import threading
import time
from collections import defaultdict

from django.db import connection, connections

from django_textclass.conf import app_settings

logger = logging.getLogger("django_textclass")

#: The ``LISTEN``/``NOTIFY`` channel on which finished requests are named.
CHANNEL = "textclass_finished"
#: A payload naming every waiter's requests (PostgreSQL refuses payloads of 8,000 bytes).
EVERYONE = "*"
MAX_PAYLOAD = 7_900
#: Seconds between a waiter's own reads of its rows while the listener is connected.
SAFETY_POLL = 2.0
#: Seconds within which the listener notices that nobody waits, and closes its connection.
IDLE_CHECK = 0.2
#: Seconds the listener waits before connecting again after its connection failed.
RECONNECT_DELAY = (0.5, 10.0)


def payload(pks):
    """The notification text naming ``pks``: their ids, or :data:`EVERYONE` when too long."""
    text = ",".join(str(pk) for pk in pks)
    return text if len(text) <= MAX_PAYLOAD else EVERYONE


def announce(pks, using=None):
    """Name ``pks`` as final on :data:`CHANNEL`; call in the transaction that made them so.

    Does nothing on databases other than PostgreSQL (their waiters read the rows instead).
    """
    if pks:
        _notify(payload(pks), using)


def announce_everyone(using=None):
    """Ask every waiter to read its rows (requests became final, their ids unread)."""
    _notify(EVERYONE, using)


def _notify(text, using):
    db = connections[using] if using else connection
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, text])


def unfinished(pks):
    """The pks among ``pks`` whose request is not in a final status yet."""
    from django_textclass.models import TERMINAL_STATUSES, ClassificationRequest

    return set(
        ClassificationRequest.objects.filter(pk__in=pks)
        .exclude(status__in=TERMINAL_STATUSES)
        .values_list("pk", flat=True)
    )


def wait_until_finished(pks, timeout):
    """Block until every request in ``pks`` is final, for at most ``timeout`` seconds.

    Returns:
        True if they all became final in time, else False.
    """
    if not pks or timeout <= 0:
        return False
    deadline = time.monotonic() + timeout
    woken = threading.Event()
    waiter = _Waiter(pks, woken.set)
    listener = Listener.get()
    listener.add(waiter)  # before the first read: no notification falls between
    try:
        while waiter.left(unfinished):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not woken.wait(min(listener.poll_interval(), remaining)):
                waiter.look = True  # nothing named it for a while: read the rows
            woken.clear()
        return True
    finally:
        listener.remove(waiter)


async def await_finished(pks, timeout, read):
    """:func:`wait_until_finished` as a coroutine: no thread is held between reads.

    Args:
        pks: the requests to wait for.
        timeout: seconds at most.
        read: an async callable running a sync function with its arguments where the
            caller's database work belongs (``read(unfinished, pks)``).
    """
    if not pks or timeout <= 0:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    woken = asyncio.Event()

    def wake():
        with contextlib.suppress(RuntimeError):  # the loop closed: the client went away
            loop.call_soon_threadsafe(woken.set)

    waiter = _Waiter(pks, wake)
    listener = Listener.get()
    listener.add(waiter)
    try:
        while True:
            if waiter.look:
                waiter.pks = await read(unfinished, waiter.pks)
                waiter.look = False
            if not waiter.left():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(woken.wait(), min(listener.poll_interval(), remaining))
            except asyncio.TimeoutError:  # the built-in TimeoutError only from Python 3.11
                waiter.look = True
            woken.clear()
    finally:
        listener.remove(waiter)


class _Waiter:
    """What one caller waits for; the listener tells it which of its requests were named.

    A request named in a notification became final in a committed transaction (only
    those are announced), so it is not read again. The rows are read at the start, after
    a wait that nothing interrupted, and after a notification naming everyone.
    """

    def __init__(self, pks, wake):
        self.pks = set(pks)
        self.named = set()
        self.look = True
        self._wake = wake

    def __call__(self, named):
        """From the listener's thread: ``named`` pks are final (None: maybe any of them)."""
        if named is None:
            self.look = True
        else:
            self.named.update(named)
        self._wake()

    def left(self, read=None):
        """Whether any request is still unfinished; reads them with ``read`` if it must."""
        named, self.named = self.named, set()
        self.pks -= named
        if self.pks and self.look and read is not None:
            self.look = False
            self.pks = read(self.pks)
        return bool(self.pks)


class Listener:
    """This process's ``LISTEN`` connection, and the waiters it wakes.

    Waiters register with the pks they wait for; a notification naming some of them (or
    :data:`EVERYONE`) tells the waiter which, from the listener's thread. The thread and its
    connection exist only while someone waits: the first waiter starts them, and they
    close within :data:`IDLE_CHECK` seconds of the last one leaving (so a test database can
    be dropped). A forked child gets a listener of its own.
    """

    _instance = None
    _instance_lock = threading.Lock()

    def __init__(self):
        self.pid = os.getpid()
        self.connected = False
        self._lock = threading.Lock()
        self._by_pk = defaultdict(set)
        self._pks_of = {}
        self._thread = None
        self._started = []  # threads not yet known to have closed their connection

    @classmethod
    def get(cls):
        """The process's listener (a new one after a fork)."""
        with cls._instance_lock:
            if cls._instance is None or cls._instance.pid != os.getpid():
                cls._instance = cls()
            return cls._instance

    def poll_interval(self):
        """Seconds a waiter may sleep before reading its rows itself."""
        if self.connected:
            return SAFETY_POLL
        return max(0.01, float(app_settings.API_WAIT_POLL_SECONDS))

    def add(self, waiter):
        """Tell ``waiter`` whenever one of its pks is named, until :meth:`remove`."""
        with self._lock:
            self._pks_of[waiter] = set(waiter.pks)
            for pk in waiter.pks:
                self._by_pk[pk].add(waiter)
            if self._thread is None and _can_listen():
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="textclass-listener"
                )
                self._thread.start()
                self._started.append(self._thread)

    def remove(self, waiter):
        """Stop telling ``waiter``."""
        with self._lock:
            for pk in self._pks_of.pop(waiter, ()):
                waiters = self._by_pk.get(pk)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._by_pk[pk]

    def dispatch(self, text):
        """Tell the waiters of the requests a notification's ``text`` names."""
        named = defaultdict(set)
        with self._lock:
            if text == EVERYONE:
                named = dict.fromkeys(self._pks_of)
            else:
                for part in text.split(","):
                    try:
                        pk = int(part)
                    except ValueError:
                        continue
                    for waiter in self._by_pk.get(pk, ()):
                        named[waiter].add(pk)
        for waiter, pks in named.items():
            waiter(pks)

    def stop(self, timeout=10):
        """Wait for the thread to close its connection (once nobody waits); for tests."""
        for thread in list(self._started):
            thread.join(timeout)
        self._started = [thread for thread in self._started if thread.is_alive()]

    def _wanted(self):
        """Whether to keep listening; if not, the thread is forgotten (a waiter starts anew)."""
        with self._lock:
            if self._pks_of:
                return True
            self._thread = None
            return False

    def _run(self):
        delay = RECONNECT_DELAY[0]
        while True:
            raw = None
            try:
                raw = listening_connection()
                raw.execute(f"LISTEN {CHANNEL}")
                self.connected = True
                delay = RECONNECT_DELAY[0]
                self.dispatch(EVERYONE)  # what finished before this connection listened
                while self._listen(raw):
                    pass
                return  # nobody waits, and this thread is forgotten
            except Exception as exc:  # noqa: BLE001 - the waiters read their rows meanwhile
                logger.warning(
                    "Not listening for finished requests (%s: %s); waiters read "
                    "their rows every API_WAIT_POLL_SECONDS until it reconnects",
                    type(exc).__name__,
                    exc,
                )
            finally:
                self.connected = False
                if raw is not None:
                    with contextlib.suppress(Exception):  # already broken
                        raw.close()
            time.sleep(delay)
            delay = min(delay * 2, RECONNECT_DELAY[1])
            if not self._wanted():
                return

    def _listen(self, raw):
        """Dispatch what arrives for up to :data:`IDLE_CHECK` s; False once nobody waits."""
        for note in raw.notifies(timeout=IDLE_CHECK):
            self.dispatch(note.payload)
            if not self._wanted():
                return False
        return self._wanted()


def stop_listening(timeout=10):
    """Block until this process's listener has closed its connection (nobody waiting).

    For code that drops the database next (a test run's teardown).
    """
    Listener.get().stop(timeout)


def listening_connection(alias="default"):
    """A psycopg connection of its own (autocommit) with the settings of ``alias``.

    Never one of Django's pooled connections (``"OPTIONS": {"pool": ...}``): one given back
    to the pool would still be listening, and it would hold a slot of the pool for as long
    as anyone waits.
    """
    db = connections.create_connection(alias)  # its settings only: it never connects
    return db.Database.connect(**db.get_connection_params(), autocommit=True)


def _can_listen():
    """PostgreSQL through psycopg 3.2 or newer (whose ``notifies()`` takes a timeout)."""
    db = connections["default"]
    if db.vendor != "postgresql" or db.Database.__name__ != "psycopg":
        return False
    return "timeout" in inspect.signature(db.Database.Connection.notifies).parameters
