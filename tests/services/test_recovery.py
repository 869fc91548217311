"""The sweep: leases that ran out, wake-ups that were lost.

No broker and no worker: ``dispatch.send`` is replaced by a recorder (the one
publishing seam, ``sent``) and ``process()`` is called directly, as the task would.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_textclass import services, tasks
from django_textclass.models import ClassificationRequest, Status, SweepRun
from django_textclass.services import recovery
from tests.fakes import textclass_settings
from tests.services.helpers import RowLock, finishes, fresh

pytestmark = pytest.mark.django_db


# --- sweep -----------------------------------------------------------------------------


def test_sweep__requeues_running_request_past_its_lease(sent):
    request = services.submit("a good day")
    services.claim([request.pk])
    now = timezone.now() + timedelta(seconds=61)  # LEASE_SECONDS is 60

    counts = services.sweep(now=now)

    assert counts == {"requeued": 1, "failed": 0, "dispatched": 1}
    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.error_code == "lease_expired"
    assert row.claim_token is None and row.lease_expires_at is None
    assert row.next_attempt_at == now
    assert row.attempts == 1  # the lost attempt counts
    assert sent.calls == [([request.pk], None)]


def test_sweep__leaves_running_request_within_its_lease(sent):
    request = services.submit("a good day")
    token, _ = services.claim([request.pk])

    counts = services.sweep(now=timezone.now() + timedelta(seconds=30))

    assert counts == {"requeued": 0, "failed": 0, "dispatched": 0}
    assert fresh(request).status == Status.RUNNING
    assert fresh(request).claim_token == token
    assert sent.calls == []


def test_sweep__fails_request_past_its_lease_without_attempts_left(sent):
    request = services.submit("a good day")
    services.claim([request.pk])
    ClassificationRequest.objects.filter(pk=request.pk).update(attempts=4)
    now = timezone.now() + timedelta(seconds=61)

    counts = services.sweep(now=now)

    assert counts == {"requeued": 0, "failed": 1, "dispatched": 0}
    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "lease_expired"
    assert row.finished_at == now
    assert row.claim_token is None and row.next_attempt_at is None
    assert sent.calls == []


def test_sweep__dispatches_overdue_pending_requests_and_bumps_them(sent):
    overdue = services.submit("a good day")
    now = timezone.now()
    ClassificationRequest.objects.filter(pk=overdue.pk).update(
        next_attempt_at=now - timedelta(seconds=10)
    )

    counts = services.sweep(now=now)

    assert counts == {"requeued": 0, "failed": 0, "dispatched": 1}
    assert sent.calls == [([overdue.pk], None)]
    assert fresh(overdue).next_attempt_at == now
    assert fresh(overdue).status == Status.PENDING
    # Bumped: the next sweep within the grace period leaves it alone.
    sent.calls.clear()
    assert services.sweep(now=now + timedelta(seconds=1))["dispatched"] == 0
    assert sent.calls == []


@pytest.mark.django_db(transaction=True)
def test_sweep__skips_rows_another_transaction_holds_instead_of_waiting(sent):
    """Found by the fault suite (10,000 texts through the REST API): the sweep's writes
    waited on rows a run was completing while the run waited on rows the sweep held, and
    PostgreSQL broke the deadlock by failing the completion (its texts were sent again)."""
    if connection.vendor == "sqlite":
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    requests = services.submit(["one", "two", "three", "four"])
    expired, held_expired, overdue, held_overdue = requests
    services.claim([expired.pk, held_expired.pk])
    now = timezone.now() + timedelta(seconds=61)  # past the lease and the grace period

    with RowLock([held_expired.pk, held_overdue.pk]):
        done, counts = finishes(lambda: services.sweep(now=now))

    assert done, "the sweep waited for rows another transaction held"
    assert counts == {"requeued": 1, "failed": 0, "dispatched": 2}
    assert fresh(expired).status == Status.PENDING and fresh(overdue).next_attempt_at == now
    assert fresh(held_expired).status == Status.RUNNING  # the next sweep takes it
    assert fresh(held_overdue).next_attempt_at < now
    assert sorted(sent.calls[-1][0]) == sorted([expired.pk, overdue.pk])


def test_sweep__leaves_requests_that_are_not_yet_overdue(sent):
    recent, future = services.submit(["one", "two"])
    now = timezone.now()
    ClassificationRequest.objects.filter(pk=recent.pk).update(
        next_attempt_at=now - timedelta(seconds=1)  # due, but within the 2 s grace
    )
    ClassificationRequest.objects.filter(pk=future.pk).update(
        next_attempt_at=now + timedelta(seconds=30)
    )

    counts = services.sweep(now=now)

    assert counts == {"requeued": 0, "failed": 0, "dispatched": 0}
    assert sent.calls == []
    assert fresh(recent).next_attempt_at == now - timedelta(seconds=1)


def test_sweep__ignores_finished_requests(sent):
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(
        status=Status.CANCELLED, next_attempt_at=timezone.now() - timedelta(hours=1)
    )

    assert services.sweep() == {"requeued": 0, "failed": 0, "dispatched": 0}
    assert sent.calls == []


# --- the workers' own sweep ----------------------------------------------------------------


@pytest.fixture
def new_process(monkeypatch):
    """Forget this process's clock: it looks at the sweep row on its next call."""

    def forget():
        monkeypatch.setattr(recovery, "_next_look", 0.0)

    forget()
    return forget


def expired_request():
    request = services.submit("a good day")
    services.claim([request.pk])
    ClassificationRequest.objects.filter(pk=request.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    return request


def test_sweep_if_due__sweeps_when_no_process_did(sent, new_process):
    request = expired_request()

    counts = services.sweep_if_due()

    assert counts["requeued"] == 1
    assert fresh(request).status == Status.PENDING
    assert SweepRun.objects.get().last_run_at is not None


def test_sweep_if_due__once_per_interval_whoever_asks(sent, new_process):
    assert services.sweep_if_due() is not None
    expired_request()

    new_process()  # another worker process, in the same second
    assert services.sweep_if_due() is None  # it looked, and the sweep was fresh
    with CaptureQueriesContext(connection) as queries:
        assert services.sweep_if_due() is None  # the same process again: not even a look
    assert len(queries) == 0

    SweepRun.objects.update(last_run_at=timezone.now() - timedelta(seconds=2))  # interval 1 s
    new_process()
    assert services.sweep_if_due()["requeued"] == 1


def test_sweep_if_due__beats_sweep_counts_as_a_sweep(sent, new_process):
    services.sweep()
    expired_request()

    assert services.sweep_if_due() is None


def test_sweep_if_due__none_leaves_it_to_beat(sent, new_process):
    expired_request()

    with textclass_settings(SWEEP_INTERVAL=None):
        assert services.sweep_if_due() is None
    assert not SweepRun.objects.exists()


def test_run_batch_task__sweeps_as_it_works_and_serves_what_it_requeued(sent, new_process):
    request = expired_request()
    other = services.submit("another day")

    # The sweep comes before the run's first top-up, which then takes the requeued row.
    assert tasks.run_batch.run([other.pk]) == 2

    assert fresh(other).status == Status.SUCCEEDED
    assert fresh(request).status == Status.SUCCEEDED and fresh(request).attempts == 2
