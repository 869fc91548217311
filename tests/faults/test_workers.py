"""Workers that die, workers that compete, and tasks that arrive twice."""

import re

import pytest
from celery import current_app
from django.utils import timezone

from django_textclass.models import ClassificationRequest, Status
from django_textclass.services import dispatch
from tests.faults.audit import AT_LEAST_ONCE, audit
from tests.faults.figures import Clock, Figures
from tests.faults.rig import (
    LEASE_SECONDS,
    assert_classified_once,
    deliver_owed_signals,
    texts,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.faults


def test_worker_sigkilled_mid_batch__a_new_worker_finishes_the_2000(rig, figures):
    """SIGKILL of the worker's whole process group (main process and pool) a quarter of the
    way through 2,000 texts; a new worker and beat's sweep finish the work."""
    rig.emulator.latency = 0.1  # each call takes a while: some are out when it dies
    doomed = rig.worker("doomed")
    rig.beat()
    clock = Clock()
    accepted = rig.submit(texts(2000, 1600)) + rig.comments(negative=20, positive=20)
    wait_for(
        lambda: rig.final() >= 500,
        timeout=120,
        interval=0.1,
        message="a quarter of the texts to be final",
        describe=rig.describe,
    )

    doomed.kill()
    clock.mark("killed")
    killed_at = timezone.now()
    held = {
        pk: (model, text)
        for pk, model, text in ClassificationRequest.objects.filter(
            status=Status.RUNNING
        ).values_list("pk", "model_id", "text")
    }
    assert held, "the worker held nothing when it died: the kill was not mid-batch"
    rig.worker("successor")
    rig.wait_rows(held, message="the dead worker's requests to be final")
    clock.mark("recovered")
    rig.wait_all_final(len(accepted))
    rig.wait_signals_sent(written_after=killed_at)
    owed = deliver_owed_signals()

    report = audit(accepted, signals=AT_LEAST_ONCE)
    rows = ClassificationRequest.objects.all()
    assert report.succeeded == len(accepted)  # no text failed
    retried = set(rows.filter(attempts__gt=1).values_list("pk", flat=True))
    assert retried <= set(held)  # only what the dead worker held was tried again ...
    assert set(rows.values_list("attempts", flat=True)) <= {1, 2}  # ... and only once
    # The API answered nothing twice but what the dead worker held.
    assert_classified_once(rig.emulator, except_for=set(held.values()))
    figures(
        Figures(
            "worker SIGKILLed mid-batch",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            recovery_s=clock.between("killed", "recovered"),
            recovery_from=f"SIGKILL to its {len(held)} held rows final (lease {LEASE_SECONDS} s)",
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={
                "held_by_dead_worker": len(held),
                "retried": len(retried),
                "signals_owed_after_kill": owed,
            },
        ).count_calls(rig.emulator)
    )


def test_two_workers_on_the_same_2000_texts_with_duplicate_wake_ups__one_call_per_text(
    rig, figures
):
    """Two workers (four processes) on 2,000 texts of which 1,000 differ, and every wake-up
    published twice more: each unique text is sent to the API once."""
    rig.emulator.latency = 0.05
    rig.worker("first")
    rig.worker("second")
    clock = Clock()
    accepted = rig.submit(texts(2000, 1000), chunk=100) + rig.comments(negative=10, positive=10)
    for _ in range(2):  # duplicate wake-ups: each id's message again, in other chunks
        for start in range(0, len(accepted), 50):
            dispatch.send(accepted[start : start + 50])
    rig.wait_all_final(len(accepted))
    rig.wait_signals_sent()

    report = audit(accepted)
    assert report.succeeded == len(accepted)
    assert_classified_once(rig.emulator)  # not one text twice
    assert set(ClassificationRequest.objects.values_list("attempts", flat=True)) == {1}
    figures(
        Figures(
            "two workers, same texts, duplicate wake-ups",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={"wake_ups_published": 3},
        ).count_calls(rig.emulator)
    )


def test_same_task_delivered_twice__one_call_and_one_result_per_text(rig, figures):
    """The same ``run_batch`` message (same task id, same ids) delivered twice at once to two
    workers, and a third time after everything is final."""
    rig.emulator.latency = 0.2
    rig.worker("first")
    rig.worker("second")
    clock = Clock()
    # Stored without wake-ups (their own message could reach a worker first).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dispatch, "on_commit", lambda ids: None)
        accepted = rig.submit(texts(200, 200))
    messages = [accepted[start : start + 25] for start in range(0, len(accepted), 25)]
    for number, ids in enumerate(messages):
        for _ in range(2):
            current_app.send_task(
                dispatch.RUN_BATCH,
                args=[ids],
                task_id=f"dup-{number}",
                queue=rig.queue,
                ignore_result=True,
            )
    rig.wait_all_final(len(accepted))
    clock.mark("final")
    for number, ids in enumerate(messages):  # a late redelivery of every message
        current_app.send_task(
            dispatch.RUN_BATCH,
            args=[ids],
            task_id=f"dup-{number}",
            queue=rig.queue,
            ignore_result=True,
        )
    wait_for(
        lambda: _copies_run(rig) >= 3 * len(messages),
        timeout=60,
        interval=0.25,
        message="every copy of every message to have run",
        describe=rig.describe,
    )
    rig.wait_signals_sent()

    report = audit(accepted)
    assert report.succeeded == len(accepted)
    assert_classified_once(rig.emulator)
    assert set(ClassificationRequest.objects.values_list("attempts", flat=True)) == {1}
    figures(
        Figures(
            "same task delivered twice (and once more, late)",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={"messages": len(messages), "copies_each": 3},
        ).count_calls(rig.emulator)
    )


def _copies_run(rig):
    """How many of the duplicated ``run_batch`` messages the workers ran, from their logs."""
    done = re.compile(rb"run_batch\[dup-\d+\] succeeded")
    return sum(len(done.findall(worker.log_path.read_bytes())) for worker in rig.workers)
