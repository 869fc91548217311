"""Waiting for requests to become final: woken by the commit that finishes them."""

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from django_textclass import services
from django_textclass.services import waiting
from django_textclass.types import LabelScore, Ranking
from tests.helpers import wait_for

RANKING = Ranking((LabelScore("POSITIVE", 0.9), LabelScore("NEGATIVE", 0.1)))


def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("notifications are PostgreSQL's; elsewhere waiters read their rows")


# --- without a database ----------------------------------------------------------------


@pytest.fixture
def no_thread(monkeypatch):
    """Listeners made here dispatch by hand: they start no thread, and open no connection."""
    monkeypatch.setattr(waiting, "_can_listen", lambda: False)


def test_payload__names_the_ids():
    assert waiting.payload([3, 1, 2]) == "3,1,2"


def test_payload__too_long_for_postgresql_names_everyone():
    assert waiting.payload(range(10**12, 10**12 + 1000)) == waiting.EVERYONE


def test_dispatch__tells_each_waiter_which_of_its_requests_were_named(no_thread):
    listener = waiting.Listener()
    woken = []
    first = waiting._Waiter([1, 2], lambda: woken.append("first"))
    second = waiting._Waiter([3], lambda: woken.append("second"))
    listener.add(first)
    listener.add(second)

    listener.dispatch("1,7,not-a-number")

    assert woken == ["first"] and first.named == {1} and second.named == set()
    first.look = False
    assert first.left() is True and first.pks == {2}  # 1 is final; 2 not yet, and not read


def test_dispatch__everyone__every_waiter_reads_its_rows(no_thread):
    listener = waiting.Listener()
    waiter = waiting._Waiter([5], lambda: None)
    waiter.look = False
    listener.add(waiter)

    listener.dispatch(waiting.EVERYONE)

    assert waiter.look is True
    assert waiter.left(read=lambda pks: set()) is False  # read: it was final


def test_remove__a_removed_waiter_is_not_told(no_thread):
    listener = waiting.Listener()
    woken = []
    waiter = waiting._Waiter([5], lambda: woken.append(1))
    listener.add(waiter)
    listener.remove(waiter)

    listener.dispatch("5")

    assert woken == [] and not listener._by_pk


# --- with the database ------------------------------------------------------------------


@pytest.mark.django_db
def test_announce__sends_nothing_but_on_postgresql():
    with CaptureQueriesContext(connection) as queries:
        waiting.announce([1, 2])
    assert len(queries) == (1 if connection.vendor == "postgresql" else 0)


@pytest.fixture
def listening(transactional_db):
    """A connection of its own that LISTENs on the channel; yields a reader of payloads."""
    postgres_only()
    db = connections.create_connection("default")
    db.ensure_connection()
    db.connection.autocommit = True
    db.connection.execute(f"LISTEN {waiting.CHANNEL}")

    def received(timeout=5):
        return [note.payload for note in db.connection.notifies(timeout=timeout, stop_after=1)]

    yield received
    db.close()


def _claimed(text):
    request = services.submit(text)
    token, rows = services.claim([request.pk])
    return request, token, rows


def test_completion__names_its_rows_when_it_commits(listening):
    request, token, rows = _claimed("a text")

    with transaction.atomic():
        services.complete(token, [(rows[0], RANKING)])
        assert listening(timeout=0.3) == []  # nothing before the commit

    assert listening() == [str(request.pk)]


def test_failure__names_its_rows(listening):
    request, token, rows = _claimed("a text")

    services.fail(token, rows, code="http_400", message="bad")

    assert listening() == [str(request.pk)]


def test_cancel__names_the_request(listening):
    request = services.submit("a text")

    services.cancel(request)

    assert listening() == [str(request.pk)]


def _finish_later(request, before):
    """Claim and complete ``request`` in a thread, once ``before()`` holds."""

    def run():
        try:
            wait_for(before, timeout=10, message="the waiter")
            token, rows = services.claim([request.pk])
            services.complete(token, [(rows[0], RANKING)])
        finally:
            connection.close()  # this thread's

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _listening_for(pk):
    listener = waiting.Listener.get()
    return listener.connected and pk in listener._by_pk


@pytest.fixture
def polls_never(settings, monkeypatch):
    """Reads of the rows only at the start and after 60 s: an earlier end is a notification."""
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_WAIT_POLL_SECONDS": 60}
    monkeypatch.setattr(waiting, "SAFETY_POLL", 60)


def test_wait_until_finished__woken_by_the_commit(transactional_db, polls_never):
    postgres_only()
    request = services.submit("a text")
    thread = _finish_later(request, lambda: _listening_for(request.pk))

    started = time.monotonic()
    ready = waiting.wait_until_finished([request.pk], timeout=20)
    thread.join(10)

    assert ready is True
    assert time.monotonic() - started < 20  # the poll would have come at 60 s
    waiting.stop_listening()


def test_await_finished__woken_by_the_commit_without_a_thread(transactional_db, polls_never):
    postgres_only()
    request = services.submit("a text")
    thread = _finish_later(request, lambda: _listening_for(request.pk))

    async def read(function, *args):
        # The rows are read on a thread of the test's own (a server's request thread).
        return await sync_to_async(_closing(function), thread_sensitive=False)(*args)

    ready = asyncio.run(waiting.await_finished([request.pk], 20, read))
    thread.join(10)

    assert ready is True
    waiting.stop_listening()


def _closing(function):
    def call(*args):
        try:
            return function(*args)
        finally:
            connection.close()

    return call


def test_wait_until_finished__times_out_with_what_is_still_pending(transactional_db, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_WAIT_POLL_SECONDS": 0.05}
    request = services.submit("nobody classifies this")

    assert waiting.wait_until_finished([request.pk], timeout=0.3) is False
    waiting.stop_listening()


def test_listener__closes_its_connection_once_nobody_waits(transactional_db, settings):
    postgres_only()
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_WAIT_POLL_SECONDS": 0.05}
    request = services.submit("nobody classifies this")
    waiting.wait_until_finished([request.pk], timeout=0.5)

    waiting.stop_listening()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query LIKE %s",
            [f"LISTEN {waiting.CHANNEL}%"],
        )
        assert cursor.fetchone() == (0,)


def test_listening_connection__its_own_never_a_pooled_one(transactional_db, monkeypatch):
    """With Django's pool, a connection given back would still listen, and hold a slot."""
    postgres_only()
    wrapper = type(connections["default"])

    def pooled(self, *args):
        raise AssertionError("the listener must not open its connection through Django")

    with monkeypatch.context() as patched:  # undone before the test database's teardown
        patched.setattr(wrapper, "get_new_connection", pooled)
        raw = waiting.listening_connection()
    try:
        assert raw.autocommit is True
        raw.execute(f"LISTEN {waiting.CHANNEL}")
        assert [row[0] for row in raw.execute("SELECT pg_listening_channels()")] == [
            waiting.CHANNEL
        ]
    finally:
        raw.close()
