"""Admin actions, and the bulk services they call."""

import pytest
from django.urls import reverse

from django_textclass import services
from django_textclass.models import ClassificationRequest
from tests.admin.data import MODEL

URL = reverse("admin:django_textclass_classificationrequest_changelist")


def run_action(client, action, rows):
    return client.post(
        URL,
        {
            "action": action,
            "_selected_action": [row.pk for row in rows],
            "index": 0,
        },
        follow=True,
    )


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def test_retry_failed__only_failed_and_cancelled_become_pending(
    admin_client, history, django_capture_on_commit_callbacks
):
    selected = [
        history["failed0"],
        history["failed1"],
        history["cancelled"],
        history["succeeded0"],
        history["pending"],
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(admin_client, "retry_failed", selected)

    assert messages_of(response) == ["3 requests will be retried."]
    rows = {
        row.pk: row
        for row in ClassificationRequest.objects.filter(pk__in=[row.pk for row in selected])
    }
    for name in ("failed0", "failed1", "cancelled"):
        row = rows[history[name].pk]
        assert row.status == "pending" and row.attempts == 0 and row.error_code == ""
        assert row.finished_at is None
    assert rows[history["succeeded0"].pk].status == "succeeded"
    assert len(callbacks) == 1  # one wake-up, sent after commit


def test_cancel_pending__only_pending_rows(admin_client, history):
    selected = [history["pending"], history["running"], history["succeeded0"]]

    response = run_action(admin_client, "cancel_pending", selected)

    assert messages_of(response) == ["1 request was cancelled."]
    statuses = dict(
        ClassificationRequest.objects.filter(pk__in=[row.pk for row in selected]).values_list(
            "pk", "status"
        )
    )
    assert statuses == {
        history["pending"].pk: "cancelled",
        history["running"].pk: "running",
        history["succeeded0"].pk: "succeeded",
    }


def test_reclassify__new_requests_bypassing_the_cache(
    admin_client, history, django_capture_on_commit_callbacks
):
    original = history["succeeded3"]
    original.function_to_apply, original.top_k = "sigmoid", 1
    original.save()
    before = ClassificationRequest.objects.count()

    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(admin_client, "reclassify", [original, history["failed0"]])

    assert messages_of(response) == ["2 new requests were submitted."]
    assert ClassificationRequest.objects.count() == before + 2
    new = ClassificationRequest.objects.filter(text=original.text).exclude(pk=original.pk).get()
    assert new.status == "pending" and new.use_cache is False
    assert (new.model_id, new.function_to_apply, new.top_k, new.owner_id, new.backend) == (
        MODEL,
        "sigmoid",
        1,
        original.owner_id,
        original.backend,
    )
    original.refresh_from_db()
    assert original.status == "succeeded"  # the original is left as it was
    assert len(callbacks) == 1


def test_action_with_nothing_to_do__says_so(admin_client, history):
    response = run_action(admin_client, "cancel_pending", [history["succeeded0"]])

    assert messages_of(response) == ["0 requests were cancelled."]


def test_actions__not_offered_to_view_only_staff(viewer_client, history):
    response = viewer_client.get(URL)
    assert response.status_code == 200
    action_form = response.context["action_form"]
    choices = [name for name, _ in action_form.fields["action"].choices] if action_form else []
    assert "retry_failed" not in choices and "cancel_pending" not in choices

    run_action(viewer_client, "cancel_pending", [history["pending"]])
    history["pending"].refresh_from_db()
    assert history["pending"].status == "pending"


@pytest.mark.django_db
def test_bulk_services__one_statement_per_chunk_not_per_row(history, django_assert_max_num_queries):
    everything = ClassificationRequest.objects.all()

    # Each UPDATE comes with one SELECT of the past days it touches and one INSERT of
    # their roll-up markers (the history has rows from past days).
    with django_assert_max_num_queries(4):
        assert services.cancel_many(everything) == 1
    # A SELECT ... FOR UPDATE, one UPDATE, and the savepoint/transaction statements.
    with django_assert_max_num_queries(6):
        assert services.retry_many(everything.order_by("-created_at").distinct()) == 4
    with django_assert_max_num_queries(7):
        assert services.reclassify(everything.filter(status="succeeded")) == 11
