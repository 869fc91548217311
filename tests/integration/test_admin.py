"""Admin actions end to end: a real Celery worker against the loopback Inference API."""

import pytest
from django.urls import reverse

import django_textclass
from django_textclass.models import ClassificationRequest
from django_textclass.testing.emulator import Reply
from tests.integration.helpers import MODEL, finished

pytestmark = pytest.mark.integration

URL = reverse("admin:django_textclass_classificationrequest_changelist")


def act(client, action, pks):
    response = client.post(URL, {"action": action, "_selected_action": pks, "index": 0})
    assert response.status_code == 302


def test_reclassify__fresh_call_that_bypasses_the_cache(worker, emulator, admin_client):
    (original,) = finished(django_textclass.classify("I love this admin", model=MODEL))
    assert original.status == "succeeded"
    calls = len(emulator.requests)

    act(admin_client, "reclassify", [original.pk])

    new = ClassificationRequest.objects.exclude(pk=original.pk).get()
    (new,) = finished(new)
    assert new.status == "succeeded" and new.reused_from_id is None
    assert new.top_label == original.top_label
    assert len(emulator.requests) == calls + 1  # a real call, not the stored result
    assert emulator.requests[-1].headers["x-use-cache"] == "false"


def test_retry_failed__the_worker_runs_it_again(worker, emulator, admin_client):
    emulator.script(Reply.server_error(400))
    (failed,) = finished(django_textclass.classify("doomed at first", model=MODEL))
    assert failed.status == "failed"

    act(admin_client, "retry_failed", [failed.pk])

    (again,) = finished(failed)
    assert again.status == "succeeded" and again.attempts == 1
