"""The broker refuses, freezes, or restarts empty while texts are submitted.

Each scenario runs its own broker (a redis-server, or a RabbitMQ node) so that it can kill,
freeze and restart it; this process, the worker and beat all use it. The database is the
queue of record: whatever the broker loses, the sweep sends again.
"""

import time

import pytest
from kombu import Connection

from django_textclass.models import ClassificationRequest, Status
from django_textclass.services import dispatch
from tests.faults.audit import audit
from tests.faults.figures import Clock, Figures
from tests.faults.rig import assert_classified_once, texts
from tests.helpers import wait_for

pytestmark = pytest.mark.faults

#: How long the broker stays away in the refused and frozen scenarios (seconds).
OUTAGE = 6.0
#: The longest a classify() call of 100 texts may take while the broker is away: it never
#: waits on the broker (a thread of the process publishes), so this is the database's time.
SUBMIT_LIMIT = 3.0


def _submit_timed(rig, corpus, chunk=100):
    """``classify()`` the corpus in chunks; returns (pks, the slowest call in seconds)."""
    pks, slowest = [], 0.0
    for start in range(0, len(corpus), chunk):
        began = time.monotonic()
        pks += rig.submit(corpus[start : start + chunk], chunk=chunk)
        slowest = max(slowest, time.monotonic() - began)
    return pks, slowest


@pytest.mark.parametrize("fault", ["refused", "frozen"])
def test_broker_away_during_submit__every_text_stored_and_sent_once_it_is_back(
    rig, figures, fault, caplog
):
    """2,000 texts submitted; after the first 500 the broker goes away for OUTAGE seconds
    (killed: its port refuses; or SIGSTOPped: it accepts connections and never answers)
    while 1,000 more are submitted; then it comes back (empty, when it was killed).

    The worker is supervised (started again if it exits): now and then Celery's worker
    exits on the lost connection ("Unrecoverable error: AttributeError ... 'hostname'",
    a race in kombu's Redis transport, about 1 run in 12 here), as it would on a site."""
    broker = rig.redis()
    rig.emulator.latency = 0.02
    rig.worker(supervised=True)
    rig.beat()
    clock = Clock()
    corpus = texts(2000, 2000, tag=f"broker {fault}")
    accepted, _ = _submit_timed(rig, corpus[:500])
    # The worker idle: only a wake-up (or a sweep) sends it what comes next.
    rig.wait_all_final(len(accepted), timeout=60)

    if fault == "refused":
        broker.kill()
    else:
        broker.freeze()
    clock.mark("away")
    during, slowest = _submit_timed(rig, corpus[500:1500])
    accepted += during
    assert dispatch.flush(timeout=30)  # the publishing thread gave up on them by now
    stranded = ClassificationRequest.objects.filter(pk__in=during, status=Status.PENDING)
    stranded_count = stranded.count()
    assert ClassificationRequest.objects.filter(status=Status.FAILED).count() == 0
    wait_for(
        lambda: clock.since("away") >= OUTAGE,
        timeout=OUTAGE + 5,
        interval=0.1,
        message="the end of the outage",
    )  # the fault lasts its time, whatever happens
    if fault == "refused":
        broker.start()  # same port, nothing in it
    else:
        broker.thaw()
    clock.mark("back")
    accepted += rig.submit(corpus[1500:], chunk=100)
    rig.wait_all_final(len(accepted), timeout=120)
    clock.mark("final")
    rig.wait_signals_sent()

    report = audit(accepted)
    assert report.succeeded == len(accepted)
    assert slowest < SUBMIT_LIMIT, f"classify() waited {slowest:.1f} s on the broker"
    # The wake-ups of the texts stored meanwhile were refused (a worker may still have
    # taken some of them, with a message it had taken before: the one path to them).
    assert "the sweep will send them" in caplog.text
    assert_classified_once(rig.emulator)
    figures(
        Figures(
            f"broker {fault} during submit (Redis)",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            recovery_s=clock.between("back", "final"),
            recovery_from=f"broker back after {OUTAGE:.0f} s to every text final",
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={
                "slowest_classify_100_s": round(slowest, 2),
                "pending_without_wake_up": stranded_count,
                "worker_restarts": rig.supervisor.restarts,
            },
        ).count_calls(rig.emulator)
    )


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_broker_restarted_with_messages_queued__the_sweep_sends_the_lost_ones(rig, figures, kind):
    """2,000 texts queued faster than a slow API lets the worker take them; the broker is
    killed and comes back empty (Redis without persistence; a RabbitMQ node whose data is
    wiped, as a replaced broker): every queued wake-up is lost."""
    broker = rig.redis() if kind == "redis" else rig.rabbitmq()
    rig.emulator.latency = 0.3  # a backlog builds up in the broker
    rig.worker(supervised=True)
    rig.beat()
    clock = Clock()
    accepted = rig.submit(texts(2000, 2000, tag=f"restart {kind}"), chunk=50)
    assert dispatch.flush(timeout=30)
    wait_for(
        lambda: rig.final() >= 100,
        timeout=60,
        interval=0.1,
        message="the worker to be under way",
        describe=rig.describe,
    )
    queued = _queued(broker, rig.queue)
    assert queued > 0, "nothing was queued when the broker restarted"
    # A message in a queue nobody reads: after the restart it says whether what was queued
    # survived (the scenario's own queue fills again at once, from beat and the worker).
    marker = f"{rig.queue}-marker"
    _put(broker, marker)
    assert _queued(broker, marker) == 1

    if kind == "redis":
        broker.kill()
        broker.start()
    else:
        broker.restart(wipe=True)
    clock.mark("back")
    assert _queued(broker, marker) == 0  # what was queued is gone
    rig.wait_all_final(len(accepted), timeout=150)
    clock.mark("final")
    rig.wait_signals_sent()

    report = audit(accepted)
    assert report.succeeded == len(accepted)
    assert_classified_once(rig.emulator)
    figures(
        Figures(
            f"broker restarted empty with messages queued ({kind})",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            recovery_s=clock.between("back", "final"),
            recovery_from="broker back to every text final",
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={"messages_lost": queued, "worker_restarts": rig.supervisor.restarts},
        ).count_calls(rig.emulator)
    )


def _put(broker, queue):
    """Queue one message in ``queue`` on the scenario's broker."""
    with Connection(broker.url, connect_timeout=5) as conn:
        simple = conn.SimpleQueue(queue)
        simple.put({"marker": True})
        simple.close()


def _queued(broker, queue):
    """Messages waiting in ``queue`` on the scenario's broker (0 if it does not exist)."""
    with Connection(broker.url, connect_timeout=5) as conn:
        simple = conn.SimpleQueue(queue)
        try:
            return simple.qsize()
        except conn.channel_errors:  # the broker knows no such queue
            return 0
        finally:
            simple.close()
