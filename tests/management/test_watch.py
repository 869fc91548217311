"""watch.follow(): how the two watching commands end (done, out of time, Ctrl-C)."""

import os
import signal
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_textclass.management import watch
from django_textclass.models import ClassificationRequest
from tests.health.helpers import request


@pytest.fixture
def ctrl_c():
    """``press(seconds)``: SIGINT to this process after ``seconds``, as a terminal sends.

    Python's own SIGINT handler is installed for the test: a process started with SIGINT
    ignored (a background job of a non-interactive shell) would never see the KeyboardInterrupt.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timers = []

    def press(seconds):
        timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
        timers.append(timer)
        timer.start()

    yield press
    for timer in timers:
        timer.join()
    signal.signal(signal.SIGINT, previous)


@pytest.mark.django_db
def test_follow__returns_the_counts_and_the_seconds_it_took():
    request("succeeded", age=5)
    request("cancelled", age=5, text="other")

    counts, seconds = watch.follow(
        ClassificationRequest.objects.all(), StringIO(), description="final", interval=1
    )

    assert counts["succeeded"] == 1 and counts["cancelled"] == 1
    assert 0 <= seconds < 5


@pytest.mark.django_db
def test_follow__out_of_time_is_exit_status_1_with_the_counts():
    request("pending", age=5)
    request("running", age=5, text="other")

    with pytest.raises(CommandError) as info:
        watch.follow(
            ClassificationRequest.objects.all(),
            StringIO(),
            description="final",
            interval=1,
            timeout=1,
            still="; the workers go on",
        )

    assert info.value.returncode == 1
    assert str(info.value) == (
        "Still 2 requests pending or running after 1 s (1 pending, "
        "1 running, 0 succeeded, 0 failed, 0 cancelled); the workers "
        "go on."
    )


@pytest.mark.django_db
def test_follow__ctrl_c_is_exit_status_130_with_its_line(ctrl_c):
    request("pending", age=5)
    ctrl_c(0.5)
    with pytest.raises(CommandError) as info:
        watch.follow(
            ClassificationRequest.objects.all(),
            StringIO(),
            description="final",
            interval=1,
            timeout=30,  # a Ctrl-C that never comes fails the test (status 1), never hangs it
            stopped="Stopped, the workers go on.",
        )

    assert info.value.returncode == 130
    assert str(info.value) == "Stopped, the workers go on."


@pytest.mark.django_db
def test_status_watch__ctrl_c_is_exit_status_130(ctrl_c):
    request("pending", age=5)
    ctrl_c(0.5)
    with pytest.raises(CommandError, match="^Stopped watching.$") as info:
        call_command(
            "textclass_status",
            "--watch",
            "--interval",
            "1",
            "--timeout",
            "30",
            stdout=StringIO(),
            stderr=StringIO(),
        )

    assert info.value.returncode == 130


@pytest.mark.django_db
def test_backfill_wait__ctrl_c_is_exit_status_130_and_the_requests_stay(ctrl_c):
    from tests.testapp.models import Comment

    # bulk_create sends no post_save: the backfill creates the requests, pending.
    Comment.objects.bulk_create([Comment(body="A comment nobody classifies here", title="t")])
    ctrl_c(0.5)
    with pytest.raises(CommandError, match="^Stopped waiting; the workers go on") as info:
        call_command(
            "textclass_backfill",
            "testapp.Comment",
            "--wait",
            "--timeout",
            "30",
            stdout=StringIO(),
            stderr=StringIO(),
        )

    assert info.value.returncode == 130
    assert ClassificationRequest.objects.filter(status="pending").count() == 4  # 2 fields x 2
