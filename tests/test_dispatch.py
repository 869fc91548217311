"""Wake-up messages: chunking, options, and a broker that is down."""

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from celery import current_app
from kombu.exceptions import OperationalError

from django_textclass import dispatch
from django_textclass.tasks import run_batch
from tests.fakes import textclass_settings
from tests.helpers import ROOT


class Publisher:
    """Stands in for the Celery app's ``send_task``; can refuse from the n-th message on."""

    def __init__(self, fail_from=None):
        self.calls = []
        self.fail_from = fail_from

    def __call__(self, name, args=None, **options):
        assert name == run_batch.name  # published by name: the task's own
        if self.fail_from is not None and len(self.calls) >= self.fail_from:
            raise OperationalError("[Errno 111] Connection refused")
        self.calls.append((args, options))

    @property
    def chunks(self):
        return [args[0] for args, _ in self.calls]

    @property
    def ids(self):
        return [pk for chunk in self.chunks for pk in chunk]


@pytest.fixture
def publisher(monkeypatch):
    recorder = Publisher()
    monkeypatch.setattr(current_app, "send_task", recorder)
    return recorder


def test_send__chunks_ids_by_batch_size(publisher):
    with textclass_settings(BATCH_SIZE=2):
        assert dispatch.send([1, 2, 3, 4, 5]) == 3

    assert publisher.chunks == [[1, 2], [3, 4], [5]]


def test_send__one_message_when_ids_fit_in_a_batch(publisher):
    with textclass_settings(BATCH_SIZE=32):
        assert dispatch.send(list(range(32))) == 1

    assert publisher.chunks == [list(range(32))]


def test_send__nothing_for_no_ids(publisher):
    assert dispatch.send([]) == 0
    assert publisher.calls == []


def test_send__message_carries_only_ids(publisher):
    dispatch.send([7, 8])

    ((args, _),) = publisher.calls
    assert args == [[7, 8]]


def test_send__passes_countdown(publisher):
    dispatch.send([1], countdown=3.5)

    ((_, options),) = publisher.calls
    assert options["countdown"] == 3.5


def test_send__no_countdown_by_default(publisher):
    dispatch.send([1])

    ((_, options),) = publisher.calls
    assert "countdown" not in options


def test_send__negative_countdown_becomes_zero(publisher):
    dispatch.send([1], countdown=-2.0)

    ((_, options),) = publisher.calls
    assert options["countdown"] == 0.0


def test_send__passes_the_queue(publisher):
    with textclass_settings(QUEUE="textclass", BATCH_SIZE=1):
        dispatch.send([1, 2])

    assert [options["queue"] for _, options in publisher.calls] == ["textclass", "textclass"]


def test_send__default_queue_when_none_is_set(publisher):
    with textclass_settings(QUEUE=None):
        dispatch.send([1])

    ((_, options),) = publisher.calls
    assert "queue" not in options


def test_send__fails_fast_when_publishing(publisher):
    dispatch.send([1])

    ((_, options),) = publisher.calls
    assert options["retry_policy"]["max_retries"] <= 1


@pytest.mark.django_db
def test_send__broker_down_is_swallowed_and_logged_without_the_text(monkeypatch, caplog):
    from django_textclass.models import ClassificationRequest, text_hash

    secret_text = "my private diary entry"
    request = ClassificationRequest.objects.create(
        model_id="acme/m", text=secret_text, text_hash=text_hash(secret_text)
    )
    publisher = Publisher(fail_from=0)
    monkeypatch.setattr(current_app, "send_task", publisher)

    with caplog.at_level(logging.WARNING, logger="django_textclass.dispatch"):
        assert dispatch.send([request.pk]) == 0

    (record,) = [r for r in caplog.records if r.name == "django_textclass.dispatch"]
    assert record.levelno == logging.WARNING
    assert "OperationalError" in record.getMessage()
    assert "sweep" in record.getMessage()
    assert secret_text not in caplog.text


def test_send__stops_at_the_first_refused_chunk(monkeypatch, caplog):
    publisher = Publisher(fail_from=1)
    monkeypatch.setattr(current_app, "send_task", publisher)

    with textclass_settings(BATCH_SIZE=2), caplog.at_level(logging.WARNING):
        assert dispatch.send([1, 2, 3, 4, 5]) == 1

    assert publisher.chunks == [[1, 2]]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.parametrize("error", [ConnectionRefusedError("refused"), TimeoutError("slow")])
def test_send__any_publishing_error_is_swallowed(monkeypatch, error):
    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(current_app, "send_task", refuse)

    assert dispatch.send([1]) == 0


@pytest.mark.django_db
def test_on_commit__sends_after_commit(publisher, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        dispatch.on_commit([1, 2])
        assert publisher.calls == []

    assert len(callbacks) == 1
    assert dispatch.flush(timeout=10)
    assert publisher.chunks == [[1, 2]]


@pytest.mark.django_db
def test_on_commit__nothing_for_no_ids(publisher, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        dispatch.on_commit([])

    assert callbacks == []
    assert publisher.calls == []


def test_send__threads_one_after_another_share_one_connection(publisher):
    """A server under ASGI runs each request in a new thread: they must not each connect."""
    dispatch.drop_connections()
    for n in range(5):
        thread = threading.Thread(target=dispatch.send, args=([n],))
        thread.start()
        thread.join()

    used = {id(options["connection"]) for _, options in publisher.calls}
    assert len(publisher.calls) == 5 and len(used) == 1
    assert all(options["ignore_result"] is True for _, options in publisher.calls)
    dispatch.drop_connections()


def test_send__a_failed_connection_is_not_used_again(monkeypatch):
    dispatch.drop_connections()
    publisher = Publisher(fail_from=0)
    monkeypatch.setattr(current_app, "send_task", publisher)
    dispatch.send([1])
    failed = dispatch._idle[:]
    publisher.fail_from = None

    dispatch.send([2])

    assert failed == []  # thrown away, not kept for the next publish
    assert len(dispatch._idle) == 1
    dispatch.drop_connections()


# --- the publishing thread: what commits close together shares a message -----------------


def commit(ids, capture):
    """``on_commit(ids)`` in a transaction of its own that commits."""
    with capture(execute=True):
        dispatch.on_commit(ids)


@pytest.mark.django_db
def test_on_commit__commits_within_the_interval_share_one_message(
    publisher, django_capture_on_commit_callbacks
):
    with textclass_settings(PUBLISH_INTERVAL=60):
        for ids in ([1], [2], [3]):
            commit(ids, django_capture_on_commit_callbacks)
        time.sleep(0.3)
        # At most the first went at once (after a quiet spell); the others wait together.
        assert len(publisher.calls) <= 1
        assert dispatch.flush(timeout=10)

    assert sorted(publisher.ids) == [1, 2, 3]
    assert len(publisher.calls) <= 2


@pytest.mark.django_db
def test_on_commit__after_a_quiet_spell_publishes_at_once(
    publisher, django_capture_on_commit_callbacks
):
    with textclass_settings(PUBLISH_INTERVAL=1.5):
        dispatch.flush()
        time.sleep(1.6)  # longer than the interval since the last message
        commit([7], django_capture_on_commit_callbacks)
        deadline = time.monotonic() + 0.75
        while not publisher.calls and time.monotonic() < deadline:
            time.sleep(0.01)

    assert publisher.chunks == [[7]]


@pytest.mark.django_db
def test_on_commit__the_committing_thread_does_not_wait_for_the_broker(
    monkeypatch, django_capture_on_commit_callbacks
):
    release = threading.Event()
    published = []

    def slow_broker(name, args=None, **options):
        release.wait(10)
        published.append(args[0])

    monkeypatch.setattr(current_app, "send_task", slow_broker)
    started = time.monotonic()
    commit([4, 5], django_capture_on_commit_callbacks)
    took = time.monotonic() - started
    release.set()
    assert dispatch.flush(timeout=10)

    assert took < 1  # the broker answered only after the release
    assert published == [[4, 5]]


@pytest.mark.django_db
def test_on_commit__a_refused_message_does_not_stop_the_next(
    monkeypatch, django_capture_on_commit_callbacks
):
    publisher = Publisher(fail_from=0)
    monkeypatch.setattr(current_app, "send_task", publisher)
    commit([1], django_capture_on_commit_callbacks)
    assert dispatch.flush(timeout=10)
    publisher.fail_from = None

    commit([2], django_capture_on_commit_callbacks)
    assert dispatch.flush(timeout=10)

    assert publisher.chunks == [[2]]


def test_flush__nothing_gathered__true_at_once():
    started = time.monotonic()

    assert dispatch.flush(timeout=5) is True
    assert time.monotonic() - started < 1


def test_exit__gathered_wake_ups_are_published(tmp_path):
    """A script that stores texts and ends at once still sends their wake-ups."""
    log = tmp_path / "published"
    script = textwrap.dedent(f"""
        import django
        django.setup()
        from django.conf import settings
        from django_textclass import dispatch
        settings.TEXTCLASS = {{**settings.TEXTCLASS, "PUBLISH_INTERVAL": 60}}

        def send(ids, countdown=None):
            with open({str(log)!r}, "a") as out:
                out.write(f"{{ids}}\\n")

        dispatch.send = send
        dispatch.on_commit([1])  # autocommit: handed over at once
        dispatch.on_commit([2])  # within the interval: waits for it, or for the exit
    """)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}

    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=60)

    published = [int(pk) for line in log.read_text().split() for pk in line.strip("[],").split(",")]
    assert sorted(published) == [1, 2]
