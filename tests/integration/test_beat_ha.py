"""Two beats with celery-redbeat's lock: one sends the sweep, the other takes over when it dies.

docs/deployment.md recommends it for a beat on more than one host. Both beats are real
``celery beat`` processes on the test settings with ``redbeat.RedBeatScheduler``, against the
Redis of the run (its own keys and queue). Who sent each message is read from the broker
itself: Celery stamps every message with its sender's ``origin`` (``gen<pid>@<host>``), and no
worker consumes the queue, so every sweep message either beat sent is still there to count.
"""

import json
import os
import signal
import time

import pytest
from django.conf import settings

from tests.faults.processes import Beat
from tests.helpers import missing, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.redis]

#: Seconds redbeat's lock lives unless its holder extends it (it does at every tick).
LOCK_TIMEOUT = 4
#: The sweep's schedule, and how often a beat ticks or looks at the lock.
INTERVAL = 0.5
SWEEP = "django_textclass.sweep"


@pytest.fixture
def redis_client():
    if settings.BROKER_KIND != "redis":
        pytest.skip("runs with TEXTCLASS_TEST_BROKER=redis: the lock and the broker are Redis")
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing(f"Redis is not reachable at {settings.CELERY_BROKER_URL} ({exc})")
    yield client
    client.close()


@pytest.fixture
def two_beats(redis_client, tmp_path):
    """Two beats started together on a queue of their own; both stopped at the end."""
    pytest.importorskip("redbeat", reason="celery-redbeat is not installed (the ha-beat extra)")
    queue = f"textclass-test-{settings.RUN_ID}-beat-ha"
    prefix = f"textclass-test-{settings.RUN_ID}-redbeat"

    def forget():
        redis_client.delete(queue, *redis_client.keys(prefix + "*"))

    forget()
    env = {
        **os.environ,
        "TEXTCLASS_TEST_BROKER": "redis",
        "TEXTCLASS_TEST_QUEUE": queue,
        "TEXTCLASS_TEST_REDBEAT_LOCK": str(LOCK_TIMEOUT),
    }
    beats = [Beat(tmp_path / f"beat-{name}.log", env, interval=INTERVAL) for name in "ab"]
    for beat in beats:
        beat.start()
    try:
        yield beats, queue, prefix + ":lock"
    finally:
        for beat in beats:
            beat.stop()
        forget()


def sweeps_by_sender(client, queue):
    """``{pid: n}`` of the sweep messages waiting in ``queue``, by the pid that sent each."""
    senders = {}
    for raw in client.lrange(queue, 0, -1):
        headers = json.loads(raw)["headers"]
        if headers["task"] == SWEEP:
            pid = int(headers["origin"].split("@", 1)[0].removeprefix("gen"))
            senders[pid] = senders.get(pid, 0) + 1
    return senders


def logs(beats):
    return "\n".join(
        f"--- {beat.log_path.name}:\n{beat.log_path.read_text()[-2000:]}" for beat in beats
    )


def test_two_beats__one_sends_the_sweep_and_the_other_takes_over_when_it_is_killed(
    redis_client, two_beats
):
    beats, queue, lock = two_beats
    by_pid = {beat.process.pid: beat for beat in beats}

    # Both beats run; only the lock's holder sends, tick after tick.
    senders = wait_for(
        lambda: (
            (found := sweeps_by_sender(redis_client, queue)) and sum(found.values()) >= 8 and found
        ),
        timeout=90,
        interval=0.1,
        message="8 sweep messages from the beats",
        describe=lambda: logs(beats),
    )
    assert all(beat.process.poll() is None for beat in beats), logs(beats)
    assert len(senders) == 1, (senders, logs(beats))
    (holder_pid,) = senders
    holder = by_pid[holder_pid]
    (standby,) = (beat for beat in beats if beat is not holder)
    assert 0 < redis_client.pttl(lock) <= LOCK_TIMEOUT * 1000  # held, and extended

    # The holder dies without a word: its lock is left to expire.
    os.killpg(holder.process.pid, signal.SIGKILL)
    holder.process.wait(10)
    killed_at = time.monotonic()
    lock_left = redis_client.pttl(lock) / 1000
    sent_by_holder = sweeps_by_sender(redis_client, queue)[holder_pid]
    assert 0 < lock_left <= LOCK_TIMEOUT

    wait_for(
        lambda: sweeps_by_sender(redis_client, queue).get(standby.process.pid),
        timeout=LOCK_TIMEOUT + 30,
        interval=0.05,
        message="the standby beat's first sweep",
        describe=lambda: logs(beats),
    )
    took = time.monotonic() - killed_at
    print(
        f"the standby beat sent its first sweep {took:.2f} s after the holder was killed; "
        f"the lock had {lock_left:.2f} s left (timeout {LOCK_TIMEOUT} s)"
    )  # noqa: T201
    # Not before the lock expired; then within a look at the lock and a tick (a second
    # of slack for a loaded machine).
    assert lock_left - 0.2 <= took <= lock_left + 2 * INTERVAL + 1, logs(beats)
    assert took <= LOCK_TIMEOUT + 2 * INTERVAL + 1

    # And it goes on alone: the holder sent nothing more.
    wait_for(
        lambda: sweeps_by_sender(redis_client, queue)[standby.process.pid] >= 4,
        timeout=30,
        interval=0.1,
        message="4 sweeps from the new holder",
        describe=lambda: logs(beats),
    )
    assert sweeps_by_sender(redis_client, queue)[holder_pid] == sent_by_holder
    assert standby.process.poll() is None
