"""Nothing accepted is lost: dead workers, lost messages, a broker that is down, duplicates."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

import django_textclass
from django_textclass import dispatch, services
from django_textclass.models import (
    ClassificationRequest,
    ClassificationScore,
    Notification,
    RuleFiring,
    Status,
)
from django_textclass.services import outcomes
from tests.api.helpers import client_for
from tests.content.helpers import requests_of
from tests.faults.audit import AT_LEAST_ONCE, audit
from tests.faults.processes import Beat
from tests.helpers import ROOT, free_port, missing, wait_for
from tests.integration.helpers import MODEL, Worker, finished
from tests.testapp.models import Comment, SignalLog

pytestmark = pytest.mark.integration


def test_worker_killed_mid_call__sweep_hands_the_request_to_a_new_worker(
    worker, emulator, tmp_path
):
    worker.stop()  # this test needs the only worker to be one it can kill
    doomed = Worker(emulator.url, tmp_path / "doomed.log")
    try:
        doomed.start()
        emulator.latency = 3.0
        request = django_textclass.classify("I love resilient systems", model=MODEL)
        wait_for(
            lambda: ClassificationRequest.objects.filter(
                pk=request.pk, status=Status.RUNNING
            ).exists(),
            message="the worker to claim the request",
        )
        time.sleep(0.5)  # the HTTP call is under way
        doomed.kill()
    finally:
        doomed.stop()
    emulator.latency = 0.0
    emulator.wait_for_requests(1)  # the killed call is still answered, to a closed socket
    row = ClassificationRequest.objects.get(pk=request.pk)
    assert row.status == Status.RUNNING  # the killed run left it claimed

    # Time passes: the lease runs out. The sweep hands the request back.
    ClassificationRequest.objects.filter(pk=row.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    worker.start()
    assert services.sweep()["requeued"] == 1

    (row,) = finished(request)
    audit([request])
    assert row.status == Status.SUCCEEDED
    assert row.attempts == 2
    assert ClassificationScore.objects.filter(request=row).count() == 2
    assert emulator.texts_seen() == ["I love resilient systems"] * 2


def test_same_wake_up_delivered_twice__one_call_one_set_of_results(worker, emulator):
    emulator.latency = 0.5
    request = django_textclass.classify("I like duplicates", model=MODEL)
    dispatch.send([request.pk])
    dispatch.send([request.pk])

    (row,) = finished(request)
    time.sleep(1.0)  # let the duplicate messages run out

    audit([request])
    assert emulator.texts_seen() == ["I like duplicates"]
    assert row.attempts == 1
    assert ClassificationScore.objects.filter(request=row).count() == 2


SUBMIT_SCRIPT = f"""
import time
import tests.celery_app  # sets up Django and the Celery app, as a project's __init__ does
import django_textclass
started = time.monotonic()
request = django_textclass.classify("I love the sweep", model="{MODEL}")
print(request.pk, round(time.monotonic() - started, 2))
"""


def test_broker_down__submit_succeeds_and_sweep_sends_later(worker, emulator):
    # A separate process, like a web server, whose broker is unreachable.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEXTCLASS_TEST_WORKER": "1",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEXTCLASS_TEST_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",  # nothing listens
    }
    result = subprocess.run(
        [sys.executable, "-c", SUBMIT_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pk, elapsed = result.stdout.split()
    assert float(elapsed) < 15
    assert "the sweep will send them" in result.stderr
    time.sleep(0.5)
    assert ClassificationRequest.objects.get(pk=pk).status == Status.PENDING

    ClassificationRequest.objects.filter(pk=pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=60)
    )
    assert services.sweep()["dispatched"] == 1

    (row,) = finished(ClassificationRequest.objects.get(pk=pk))
    audit([int(pk)])
    assert row.status == Status.SUCCEEDED


class FrozenRedis(str):
    """The frozen server's URL, which can also wake it up (SIGCONT)."""

    def __new__(cls, url, pid):
        frozen = super().__new__(cls, url)
        frozen.pid = pid
        return frozen

    def thaw(self):
        os.kill(self.pid, signal.SIGCONT)


@pytest.fixture
def frozen_redis(tmp_path):
    """A Redis of the test's own, stopped with SIGSTOP: it accepts connections, never answers."""
    if shutil.which("redis-server") is None:
        missing("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def answers():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    try:
        wait_for(answers, timeout=20, message="the test's own redis-server")
        os.kill(server.pid, signal.SIGSTOP)
        yield FrozenRedis(f"redis://127.0.0.1:{port}/0", server.pid)
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait(10)


@pytest.fixture
def silent_amqp():
    """A TCP port that accepts AMQP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"amqp://guest:guest@127.0.0.1:{listener.getsockname()[1]}//"
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("broker", ["frozen_redis", "silent_amqp"])
def test_frozen_broker__classify_answers_within_seconds_and_the_sweep_sends_later(
    worker, emulator, broker, request
):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEXTCLASS_TEST_WORKER": "1",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEXTCLASS_TEST_BROKER_URL": request.getfixturevalue(broker),
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", SUBMIT_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pk, elapsed = result.stdout.split()
    # PUBLISH_TIMEOUT (2 s) for each socket operation, one retry: well under ten seconds.
    assert float(elapsed) < 10, result.stderr
    assert time.monotonic() - started < 30  # the process as a whole did not hang either
    assert "the sweep will send them" in result.stderr
    assert ClassificationRequest.objects.get(pk=pk).status == Status.PENDING

    ClassificationRequest.objects.filter(pk=pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=60)
    )
    assert services.sweep()["dispatched"] == 1  # this process's broker answers
    (row,) = finished(ClassificationRequest.objects.get(pk=pk))
    audit([int(pk)])
    assert row.status == Status.SUCCEEDED


def test_beat_runs_the_sweep__a_lost_wake_up_is_recovered(worker, emulator, tmp_path):
    # A request stored without any wake-up, as if the message had been lost.
    lost = ClassificationRequest.objects.create(
        model_id=MODEL,
        text="I love beat",
        text_hash="0" * 64,
        backend="default",
        next_attempt_at=timezone.now() - timedelta(seconds=60),
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEXTCLASS_TEST_WORKER": "1"}
    beat = Beat(tmp_path / "beat.log", env, interval=0.5).start()
    try:
        (row,) = finished(lost)
    finally:
        beat.stop()
    assert row.status == Status.SUCCEEDED, Path(tmp_path / "beat.log").read_text()
    audit([lost])
    assert "django_textclass.sweep" in Path(tmp_path / "beat.log").read_text()
    assert settings.CELERY_BEAT_SCHEDULE["textclass-sweep"]["task"] == "django_textclass.sweep"


def test_backlog__a_dead_workers_rows_are_recovered_without_waiting_behind_it(worker, emulator):
    """No beat at all: the workers sweep themselves, between the tasks of a backlog."""
    # 800 texts, calls of 8, two processes: a backlog of about 12 s, longer than one task's
    # stream (STREAM_SECONDS), after which the task sweeps.
    emulator.latency = 0.25
    stranded = ClassificationRequest.objects.create(
        model_id=MODEL,
        text="left behind by a dead worker",
        text_hash="1" * 64,
        backend="default",
        status=Status.RUNNING,
        attempts=1,
        claim_token=uuid.uuid4(),
        started_at=timezone.now() - timedelta(seconds=120),
        lease_expires_at=timezone.now() - timedelta(seconds=60),
    )
    backlog = django_textclass.classify([f"backlog text {n}" for n in range(800)], model=MODEL)

    wait_for(
        lambda: ClassificationRequest.objects.get(pk=stranded.pk).status != Status.RUNNING,
        timeout=20,
        message="a worker's own sweep to requeue the stranded request",
    )
    still_queued = ClassificationRequest.objects.filter(
        pk__in=[row.pk for row in backlog], status__in=[Status.PENDING, Status.RUNNING]
    ).count()

    assert still_queued > 0  # recovered while the backlog was still being worked through
    rows = finished(stranded, *backlog, timeout=90)
    audit(rows)
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    assert ClassificationRequest.objects.get(pk=stranded.pk).attempts == 2


def test_database_connections_killed_under_the_worker__rows_back_in_work_at_once(worker, emulator):
    if connection.vendor != "postgresql":
        pytest.skip("terminating other sessions is PostgreSQL's pg_terminate_backend()")
    emulator.latency = 1.0  # the worker is mid-call when its connections die
    requests = django_textclass.classify([f"text number {n}" for n in range(40)], model=MODEL)
    wait_for(
        lambda: ClassificationRequest.objects.filter(status=Status.RUNNING).exists(),
        message="the worker to claim",
    )
    started = time.monotonic()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (killed,) = cursor.fetchone()

    rows = finished(*requests, timeout=60)
    # A signal whose delivery the killed connection broke is the sweep's, two minutes on.
    outcomes.deliver_overdue(now=timezone.now() + timedelta(seconds=outcomes.DELIVERY_SECONDS))
    audit(rows, signals=AT_LEAST_ONCE)
    assert killed >= 1
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    # Back in work through the run's own hand-back, long before the 60 s lease ran out.
    assert time.monotonic() - started < 30
    assert ClassificationScore.objects.filter(request__in=rows).count() == 2 * len(rows)


def test_worker_killed_between_commit_and_signals__the_sweep_sends_them_and_rules_fire_once(
    worker, emulator, tmp_path
):
    worker.stop()  # the only worker must be the one that dies
    flags = tmp_path / "died"
    flags.mkdir()
    dying = Worker(
        emulator.url,
        tmp_path / "dying.log",
        name="dying",
        env={
            "TEXTCLASS_TEST_DIE_ON": "dies after commit",
            "TEXTCLASS_TEST_DIE_FLAGS": str(flags),
            "TEXTCLASS_TEST_LEASE_SECONDS": "2",
        },
    )

    def both_died():
        # One run may hold both rows (their wake-ups share a message): it dies after the
        # first result, and the other row waits for its lease to run out and for a sweep.
        services.sweep()
        return len(list(flags.iterdir())) == 2

    try:
        dying.start()
        comment = Comment.objects.create(title="", body="I hate this, it dies after commit")
        # The body is classified with two models: each result's process dies once.
        wait_for(
            both_died,
            timeout=60,
            interval=0.5,
            message="a pool process to kill itself after each result",
        )
    finally:
        dying.stop()
        worker.start()  # the session's worker again, whatever happened above
    rows = requests_of(comment)
    assert {row.status for row in rows} == {Status.SUCCEEDED}  # the results were committed ...
    assert RuleFiring.objects.count() == 0  # ... and not one receiver ran
    assert Notification.objects.filter(request__in=rows).count() == 2  # the outbox holds them
    body = next(row for row in rows if row.model_id == MODEL)

    later = timezone.now() + timedelta(seconds=outcomes.DELIVERY_SECONDS + 1)
    services.sweep(now=later)

    wait_for(lambda: not Notification.objects.exists(), message="every notification sent")
    fired = RuleFiring.objects.filter(request_uuid=body.uuid, rule="hide negative")
    assert fired.count() == 1
    assert SignalLog.objects.filter(kind="succeeded", request_uuid=body.uuid).count() == 1
    services.sweep(now=later + timedelta(seconds=outcomes.DELIVERY_SECONDS + 1))
    rules = RuleFiring.objects.filter(request_uuid=body.uuid).values_list("rule", flat=True)
    assert sorted(rules) == ["explodes", "hide negative"]  # each rule once, after two sweeps
    audit(rows, signals=AT_LEAST_ONCE)


@pytest.fixture
def web_on_a_frozen_broker(frozen_redis, monkeypatch, settings):
    """This test process publishes to the frozen Redis, as a web server of the site would."""
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", frozen_redis)
    dispatch.drop_connections()  # none from before: the next publish opens a new one
    settings.TEXTCLASS = {**settings.TEXTCLASS, "INFERENCE_WAIT_SECONDS": 0.5}
    yield
    dispatch.drop_connections()


@pytest.mark.parametrize(
    ("path", "body", "answered"),
    [
        ("/api/classifications/", {"text": "I love a frozen broker"}, 202),
        (f"/api/models/{MODEL}", {"inputs": "I love a frozen broker"}, 503),  # not ready yet
    ],
)
def test_frozen_broker__the_rest_api_answers_within_seconds(
    transactional_db, web_on_a_frozen_broker, alice, path, body, answered, caplog
):
    client = client_for(alice)
    started = time.monotonic()

    response = client.post(path, body, format="json")

    assert response.status_code == answered, response.content
    assert time.monotonic() - started < 10  # PUBLISH_TIMEOUT 2 s, one retry, plus the wait
    assert dispatch.flush(timeout=20)  # the publishing thread gave up on it by now
    assert "the sweep will send them" in caplog.text  # it did try the frozen broker
    row = ClassificationRequest.objects.get()
    # Stored: the sweep will send it, unless a running worker looking for waiting work (the
    # suite's, if an earlier test started it) has taken it already.
    assert row.status in {Status.PENDING, Status.RUNNING, Status.SUCCEEDED}


def test_frozen_broker__beat_with_socket_timeouts_keeps_ticking(frozen_redis, tmp_path):
    """What check W006 asks for: beat times out, tries again, and sweeps once the broker is back."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEXTCLASS_TEST_WORKER": "1",
        "TEXTCLASS_TEST_BROKER_URL": frozen_redis,
        "TEXTCLASS_TEST_BROKER_SOCKET_TIMEOUT": "1",
    }
    log_path = tmp_path / "beat.log"
    beat = Beat(log_path, env, interval=0.5).start()

    def count(words):
        return log_path.read_text(errors="replace").count(words)

    try:
        # redis-py 8 names the address ("Timeout reading from 127.0.0.1:port"), older
        # versions "Timeout reading from socket".
        wait_for(
            lambda: count("Timeout reading from") >= 2,
            timeout=60,
            message="beat to time out on the frozen broker, twice, and try again",
        )
        assert beat.process.poll() is None and count("Sending due task") == 0
        frozen_redis.thaw()  # the broker answers again: beat sends the sweep on schedule
        wait_for(
            lambda: count("Sending due task textclass-sweep") >= 1,
            timeout=60,
            message="beat to send the sweep once the broker answers",
        )
    finally:
        beat.stop()
