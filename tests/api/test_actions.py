"""POST .../retry/ and .../cancel/: allowed transitions, 409 otherwise, owner scoping."""

import pytest

from django_textclass.models import ClassificationRequest, Status
from tests.api.helpers import detail_url, stored

pytestmark = pytest.mark.django_db


def act(client, row, verb):
    return client.post(f"{detail_url(row)}{verb}/", format="json")


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED])
def test_retry_failed_or_cancelled__202_pending_with_fresh_budget(api, alice, status):
    row = stored(alice, status=status, error_code="timeout" if status == Status.FAILED else "")

    response = act(api, row, "retry")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["attempts"] == 0 and body["error"] is None
    assert response.headers["Location"] == body["url"]
    row.refresh_from_db()
    assert row.status == Status.PENDING and row.finished_at is None


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.SUCCEEDED])
def test_retry_other_status__409_with_reason(api, alice, status):
    row = stored(alice, status=status)

    response = act(api, row, "retry")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Only failed or cancelled requests can be retried; this one is {status}.",
        "code": "not_retryable",
        "status": status,
    }
    row.refresh_from_db()
    assert row.status == status


def test_cancel_pending__200_cancelled(api, alice):
    row = stored(alice)

    response = act(api, row, "cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    row.refresh_from_db()
    assert row.status == Status.CANCELLED and row.finished_at is not None


@pytest.mark.parametrize(
    "status", [Status.RUNNING, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED]
)
def test_cancel_other_status__409_with_reason(api, alice, status):
    row = stored(alice, status=status)

    response = act(api, row, "cancel")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "not_cancellable" and body["status"] == status
    assert "Only pending requests can be cancelled" in body["detail"]


@pytest.mark.parametrize(
    ("verb", "status"),
    [
        ("retry", Status.FAILED),
        ("cancel", Status.PENDING),
    ],
)
def test_action_on_other_users_request__404_and_unchanged(bob_api, alice, verb, status):
    row = stored(alice, status=status, error_code="timeout" if status == Status.FAILED else "")

    response = act(bob_api, row, verb)

    assert response.status_code == 404
    row.refresh_from_db()
    assert row.status == status


def test_action_staff__on_any_users_request(staff_api, alice):
    pending, failed = stored(alice), stored(alice, status=Status.FAILED, error_code="timeout")

    assert act(staff_api, pending, "cancel").status_code == 200
    assert act(staff_api, failed, "retry").status_code == 202


def test_action_get__405(api, alice):
    row = stored(alice)

    assert api.get(f"{detail_url(row)}cancel/").status_code == 405
    assert ClassificationRequest.objects.get().status == Status.PENDING
