"""The sweep: leases that ran out, wake-ups that were lost.

No broker and no worker: ``dispatch.send`` is replaced by a recorder (the one
publishing seam, ``sent``) and ``process()`` is called directly, as the task would.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_textclass import services
from django_textclass.models import ClassificationRequest, Status
from tests.services.helpers import (
    fresh,
)

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
