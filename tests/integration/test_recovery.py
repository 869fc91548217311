"""Nothing accepted is lost: dead workers, lost messages, a broker that is down, duplicates."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

import django_textclass
from django_textclass import dispatch, services
from django_textclass.models import ClassificationRequest, ClassificationScore, Status
from tests.helpers import ROOT, wait_for
from tests.integration.helpers import MODEL, Worker, finished

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
        **os.environ, "PYTHONPATH": str(ROOT), "TEXTCLASS_TEST_WORKER": "1",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEXTCLASS_TEST_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",  # nothing listens
    }
    result = subprocess.run(
        [sys.executable, "-c", SUBMIT_SCRIPT], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=60,
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
    assert row.status == Status.SUCCEEDED


def test_beat_runs_the_sweep__a_lost_wake_up_is_recovered(worker, emulator, tmp_path):
    # A request stored without any wake-up, as if the message had been lost.
    lost = ClassificationRequest.objects.create(
        model_id=MODEL, text="I love beat", text_hash="0" * 64, backend="default",
        next_attempt_at=timezone.now() - timedelta(seconds=60),
    )
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "TEXTCLASS_TEST_WORKER": "1",
        "TEXTCLASS_TEST_BEAT_INTERVAL": "0.5",
    }
    log = open(tmp_path / "beat.log", "wb")  # noqa: SIM115
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.celery_app", "beat", "--loglevel=INFO",
         f"--schedule={tmp_path / 'beat-schedule'}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        (row,) = finished(lost)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(10)
        log.close()
    assert row.status == Status.SUCCEEDED, Path(tmp_path / "beat.log").read_text()
    assert "django_textclass.sweep" in Path(tmp_path / "beat.log").read_text()
    assert settings.CELERY_BEAT_SCHEDULE["textclass-sweep"]["task"] == "django_textclass.sweep"
