"""cancel() and retry() of one request: what changes, what is refused, what wakes a worker.

No broker and no worker, as in ``test_submission.py``; the bulk forms are tested through
the admin's actions (``tests/admin/test_actions.py``) and the commands that use them.
"""

import pytest
from django.utils import timezone

from django_textclass import dispatch, services
from django_textclass.exceptions import PermanentBackendError
from django_textclass.models import ClassificationRequest, Status
from tests.services.helpers import fresh

pytestmark = pytest.mark.django_db


def test_cancel__cancels_a_pending_request():
    request = services.submit("a good day")

    assert services.cancel(request) is True

    row = fresh(request)
    assert row.status == Status.CANCELLED
    assert row.finished_at is not None
    assert row.next_attempt_at is None
    assert services.process([request.pk]) == 0


@pytest.mark.parametrize("status", [Status.RUNNING, Status.SUCCEEDED, Status.FAILED])
def test_cancel__refuses_requests_that_are_not_pending(status):
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(status=status)

    assert services.cancel(request) is False
    assert fresh(request).status == status


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED])
def test_retry__sends_a_failed_or_cancelled_request_again(
    status, sent, django_capture_on_commit_callbacks
):
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(
        status=status,
        attempts=4,
        error_code="retries_exhausted",
        error_message="gave up",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        next_attempt_at=None,
    )
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.retry(request) is True
        assert sent.calls == []  # not before the commit

    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.attempts == 0
    assert row.error_code == "" and row.error_message == ""
    assert row.started_at is None and row.finished_at is None
    assert row.next_attempt_at >= before
    assert len(callbacks) == 1
    dispatch.flush()
    assert sent.calls == [([request.pk], None)]


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.SUCCEEDED])
def test_retry__refuses_requests_that_are_not_failed_or_cancelled(
    status, sent, django_capture_on_commit_callbacks
):
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(status=status, attempts=2)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.retry(request) is False

    assert callbacks == []
    assert sent.calls == []
    assert fresh(request).status == status
    assert fresh(request).attempts == 2


def test_retry__a_retried_request_is_classified_again(backend):
    backend.script = [PermanentBackendError("HTTP 500", code="http_500")]
    request = services.submit("a good day")
    services.process([request.pk])
    assert fresh(request).status == Status.FAILED

    services.retry(request)
    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.SUCCEEDED
    assert row.attempts == 1
    assert len(backend.calls) == 2
