"""Idempotency-Key on POST /api/classifications/."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_textclass.models import ClassificationRequest, IdempotencyKey
from tests.api.helpers import LIST_URL

pytestmark = pytest.mark.django_db


def post(client, body, key):
    return client.post(LIST_URL, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_same_body__same_request_not_a_new_one(api):
    first = post(api, {"text": "hello"}, "key-1")
    again = post(api, {"text": "hello"}, "key-1")

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert ClassificationRequest.objects.count() == 1


def test_same_key_batch__same_requests_in_order(api):
    first = post(api, {"texts": ["a", "b", "c"]}, "batch-key")
    again = post(api, {"texts": ["a", "b", "c"]}, "batch-key")

    assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in first.json()["results"]]
    assert ClassificationRequest.objects.count() == 3


def test_same_key_key_order_and_wait__do_not_matter(api):
    first = post(api, {"text": "hello", "model": "org/m"}, "k")
    again = post(api, {"model": "org/m", "text": "hello", "wait": 1}, "k")

    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]


def test_same_key_different_body__422_and_nothing_new(api):
    post(api, {"text": "hello"}, "key-2")

    response = post(api, {"text": "goodbye"}, "key-2")

    assert response.status_code == 422
    assert "different request body" in response.json()["detail"]
    assert ClassificationRequest.objects.count() == 1


def test_different_users__may_use_the_same_key(api, bob_api):
    mine = post(api, {"text": "hello"}, "shared-key")
    theirs = post(bob_api, {"text": "hello"}, "shared-key")

    assert theirs.status_code == 202
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["owner"] == "bob"
    assert IdempotencyKey.objects.count() == 2


def test_no_key__every_post_creates(api):
    api.post(LIST_URL, {"text": "hello"}, format="json")
    api.post(LIST_URL, {"text": "hello"}, format="json")

    assert ClassificationRequest.objects.count() == 2


def test_invalid_body_with_key__400_and_key_not_spent(api):
    assert post(api, {"text": ""}, "key-3").status_code == 400
    assert not IdempotencyKey.objects.exists()

    assert post(api, {"text": "fixed"}, "key-3").status_code == 202


def test_expired_key__starts_afresh(api, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_IDEMPOTENCY_TTL": 60}
    first = post(api, {"text": "hello"}, "old-key")
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(seconds=61))

    again = post(api, {"text": "other"}, "old-key")

    assert again.status_code == 202
    assert again.json()["id"] != first.json()["id"]
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "spaces are not allowed", "ключ"])
def test_malformed_key__400_nothing_stored(api, key):
    response = api.post(
        LIST_URL,
        {"text": "hello"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key.encode().decode("latin-1"),
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not ClassificationRequest.objects.exists()


def test_key_with_anonymous_caller__400(settings):
    from tests.api.helpers import client_for

    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "API_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    }

    response = post(client_for(None), {"text": "hello"}, "k")

    assert response.status_code == 400
    assert "authenticated" in response.json()["Idempotency-Key"][0]
    assert not ClassificationRequest.objects.exists()
