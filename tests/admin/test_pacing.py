"""Admin: the backends' pacing state, read-only, and the action that ends a wait."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from django_textclass.models import BackendPace
from django_textclass.services import pacing

pytestmark = pytest.mark.django_db
URL = reverse("admin:django_textclass_backendpace_changelist")


def test_changelist__shows_waits_and_circuits(admin_client):
    pacing.rate_limited("default", 4.0)
    for _ in range(3):
        pacing.failed("other", "connection_error")

    response = admin_client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert "rate_limited" in page and "circuit_open" in page and "connection_error" in page
    assert "(whole backend)" in page


def test_no_add_and_no_change_form(admin_client):
    pacing.rate_limited("default", 4.0)
    row = BackendPace.objects.get()

    assert admin_client.get(reverse("admin:django_textclass_backendpace_add")).status_code == 403
    admin_client.post(
        reverse("admin:django_textclass_backendpace_change", args=[row.pk]), {"failures": 99}
    )
    assert BackendPace.objects.get().failures == 0  # every field is read-only


def test_reset_action__ends_the_wait_and_closes_the_circuit(admin_client):
    for _ in range(3):
        pacing.failed("default", "timeout")
    row = BackendPace.objects.get()
    assert row.circuit == "open"

    response = admin_client.post(
        URL, {"action": "reset", "_selected_action": [row.pk], "index": 0}, follow=True
    )

    assert "1 pacing state reset." in [str(m) for m in response.context["messages"]]
    row.refresh_from_db()
    assert (row.circuit, row.not_before, row.failures) == ("closed", None, 0)
    assert pacing.gate("default", "acme/x").wait_until is None


def test_viewer_without_change_permission_cannot_reset(viewer_client, django_user_model):
    viewer = django_user_model.objects.get(username="vera")
    viewer.user_permissions.add(Permission.objects.get(codename="view_backendpace"))
    for _ in range(3):
        pacing.failed("default", "timeout")
    row = BackendPace.objects.get()

    assert viewer_client.get(URL).status_code == 200
    viewer_client.post(URL, {"action": "reset", "_selected_action": [row.pk], "index": 0})

    assert BackendPace.objects.get().circuit == "open"
