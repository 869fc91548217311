"""The database connections of every process cut from under the worker, again and again."""

import pytest
from django.db import connection
from django.utils import timezone

from django_textclass.models import ClassificationRequest, RequestEvent, Status
from tests.faults.audit import AT_LEAST_ONCE, audit
from tests.faults.figures import Clock, Figures
from tests.faults.rig import LEASE_SECONDS, assert_classified_once, deliver_owed_signals, texts
from tests.helpers import wait_for

pytestmark = pytest.mark.faults

KILLS = 10
#: Requests that must become final between two kills: each kill lands on a working worker.
PROGRESS = 60


def _terminate_other_sessions():
    """``pg_terminate_backend()`` every other session on the test database (the worker's
    processes, their call threads, beat): what a failover or an operator does."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_database_connections_terminated_ten_times__every_text_succeeds(rig, figures):
    """2,000 texts and 40 comments; ten times, once the worker has made progress since the
    last time, every session of the worker (and of beat) is terminated."""
    rig.emulator.latency = 0.1
    rig.worker()
    rig.beat()
    clock = Clock()
    accepted = rig.submit(texts(2000, 1600, tag="database")) + rig.comments(20, 20)
    first_kill = timezone.now()
    killed = []
    for _ in range(KILLS):
        floor = rig.final() + PROGRESS
        wait_for(
            lambda floor=floor: rig.final() >= min(floor, len(accepted)),
            timeout=90,
            interval=0.1,
            message="progress since the last kill",
            describe=rig.describe,
        )
        if rig.final() >= len(accepted):
            break
        killed.append(_terminate_other_sessions())
    clock.mark("last kill")
    assert len(killed) == KILLS, f"the work was done after {len(killed)} kills"
    assert all(killed), killed
    rig.wait_all_final(len(accepted), timeout=120)
    clock.mark("final")
    rig.wait_outbox_settled()
    owed = deliver_owed_signals()  # what a killed connection kept them from sending

    report = audit(accepted, signals=AT_LEAST_ONCE)
    assert report.succeeded == len(accepted)
    attempts = set(ClassificationRequest.objects.values_list("attempts", flat=True))
    assert max(attempts) <= 2, attempts
    handed_back = RequestEvent.objects.filter(reason="database_error")
    # A text whose answer was lost with a connection is asked again: its run handed it back
    # (a database_error wait), or, the database still away then, its lease ran out (a second
    # attempt). Nothing else is.
    lost = set(handed_back.values_list("request__model_id", "request__text"))
    lost |= set(
        ClassificationRequest.objects.filter(attempts__gt=1).values_list("model_id", "text")
    )
    assert_classified_once(rig.emulator, except_for=lost)
    assert not ClassificationRequest.objects.filter(status=Status.FAILED).exists()
    figures(
        Figures(
            "database connections terminated 10 times",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            recovery_s=clock.between("last kill", "final"),
            recovery_from=f"the last of {KILLS} kills to every text final (lease "
            f"{LEASE_SECONDS} s)",
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={
                "sessions_terminated": sum(killed),
                "handed_back_rows": handed_back.count(),
                "attempts_max": max(attempts),
                "signals_owed": owed,
                "first_kill": first_kill.isoformat(),
            },
        ).count_calls(rig.emulator)
    )
