"""The benchmark's bare DRF baseline (tests/testapp/bare.py) still stores what it claims to."""

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.api.helpers import MODEL, client_for
from tests.testapp.models import BareSubmission

pytestmark = pytest.mark.django_db

URL = "/bare/submissions/"


def test_bare_create__stores_a_row_for_the_caller(api, alice):
    response = api.post(URL, {"text": "I like you", "model_id": MODEL}, format="json")

    assert response.status_code == 201
    row = BareSubmission.objects.get()
    assert response.json()["uuid"] == str(row.uuid)
    assert (row.owner, row.model_id, row.text, row.status) == (
        alice,
        MODEL,
        "I like you",
        "pending",
    )
    assert row.text_hash == hashlib.sha256(b"I like you").hexdigest()


def test_bare_create__refuses_anonymous():
    response = APIClient().post(URL, {"text": "hi", "model_id": MODEL}, format="json")

    assert response.status_code == 403  # as the app's endpoint: session auth comes first
    assert not BareSubmission.objects.exists()


def test_bare_create__same_token_as_the_app(alice):
    """The benchmark sends one token to both endpoints."""
    client = client_for(alice)

    assert client.post(URL, {"text": "a", "model_id": MODEL}, format="json").status_code == 201
    assert (
        client.post(
            "/api/classifications/", {"text": "a", "model": MODEL}, format="json"
        ).status_code
        == 202
    )


def test_testapp_migrations__no_drift():
    out = StringIO()
    call_command("makemigrations", "testapp", "--check", "--dry-run", stdout=out)

    assert "No changes detected" in out.getvalue()
