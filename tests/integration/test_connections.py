"""How many PostgreSQL connections a worker process holds: docs/deployment.md's formula.

A run of ``run_batch`` keeps ``CALLS_IN_FLIGHT`` calls out from a pool of twice as many
threads (while one call's answer is stored, the next is out), each with its own connection;
the task's own thread has one, and the lease heartbeat one more while a run lasts past a
third of ``LEASE_SECONDS``. So a worker process holds at most ``2 x CALLS_IN_FLIGHT + 2``.
The connections are counted from outside, as the operating system sees them: the TCP
sockets to port 5432 among each worker process's open files (Linux's ``/proc``).
"""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

import django_textclass
from django_textclass.models import ClassificationRequest, Status
from tests.integration.helpers import MODEL, Worker, finished

pytestmark = pytest.mark.integration

CALLS_IN_FLIGHT = 3
PG_PORT = 5432


def children(pid):
    """Pids of the processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def postgres_sockets():
    """Inodes of the established TCP connections to port 5432 on this machine."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == PG_PORT and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    return inodes


def connections_of(pid, sockets):
    """How many of ``sockets`` process ``pid`` holds open."""
    held = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in sockets:
                held += 1
    except OSError:  # the process is gone
        pass
    return held


@pytest.fixture
def own_worker(emulator, transactional_db, tmp_path):
    """A worker of this test's own: CALLS_IN_FLIGHT 3, a 3 s lease (heartbeat every 1 s)."""
    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL connections (TEXTCLASS_TEST_DB=postgres)")
    if not Path("/proc/net/tcp").exists():
        pytest.skip("reads the connections from Linux's /proc")
    started = Worker(
        emulator.url,
        tmp_path / "worker.log",
        name="connections",
        env={
            "TEXTCLASS_TEST_CALLS_IN_FLIGHT": str(CALLS_IN_FLIGHT),
            "TEXTCLASS_TEST_LEASE_SECONDS": "3",
            "TEXTCLASS_TEST_QUEUE": f"{settings.CELERY_TASK_DEFAULT_QUEUE}-connections",
        },
    )
    started.start()
    yield started
    started.stop()


def test_worker_process__holds_at_most_two_connections_per_call_in_flight_plus_two(
    own_worker, emulator, settings
):
    # The wake-ups go to the worker's own queue (its default queue is that one).
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "QUEUE": own_worker.extra_env["TEXTCLASS_TEST_QUEUE"],
    }
    emulator.latency = 0.4
    requests = django_textclass.classify([f"review number {n}" for n in range(1200)], model=MODEL)
    pks = [request.pk for request in requests]
    peak = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        sockets = postgres_sockets()
        for pid in [own_worker.process.pid, *children(own_worker.process.pid)]:
            peak[pid] = max(peak.get(pid, 0), connections_of(pid, sockets))
        if not ClassificationRequest.objects.filter(
            pk__in=pks, status__in=[Status.PENDING, Status.RUNNING]
        ).exists():
            break
        time.sleep(0.05)

    rows = finished(*requests, timeout=30)
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    parent = peak.pop(own_worker.process.pid)
    print(
        f"peak connections: main process {parent}, "  # noqa: T201 - shown with -s
        f"pool processes {sorted(peak.values())}"
    )
    assert parent == 0  # the parent hands tasks out, never queries
    assert max(peak.values()) <= 2 * CALLS_IN_FLIGHT + 2
    # The bound is reached: every call thread, the task's thread and the heartbeat at once.
    assert max(peak.values()) == 2 * CALLS_IN_FLIGHT + 2
