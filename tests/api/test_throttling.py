"""The per-user rate limit of the submitting endpoints."""

import pytest

from django_textclass.models import ClassificationRequest, Status
from tests.api.helpers import LIST_URL, detail_url, stored

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_per_minute(settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_THROTTLE_RATE": "2/minute"}


def submit(client):
    return client.post(LIST_URL, {"text": "hello"}, format="json")


def test_submit_over_rate__429_with_retry_after_and_nothing_stored(api, two_per_minute):
    assert [submit(api).status_code for _ in range(2)] == [202, 202]

    response = submit(api)

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "throttled" in response.json()["detail"]
    assert ClassificationRequest.objects.count() == 2


def test_rate_is_per_user(api, bob_api, two_per_minute):
    submit(api), submit(api)

    assert submit(api).status_code == 429
    assert submit(bob_api).status_code == 202


def test_retry_counts_against_the_rate(api, alice, two_per_minute):
    failed = stored(alice, status=Status.FAILED, error_code="timeout")
    submit(api), submit(api)

    assert api.post(f"{detail_url(failed)}retry/").status_code == 429


def test_reads_are_not_throttled(api, two_per_minute):
    submit(api), submit(api)

    assert all(api.get(LIST_URL).status_code == 200 for _ in range(5))


def test_drop_in_endpoint_is_throttled(api, two_per_minute):
    submit(api), submit(api)

    response = api.post("/api/models/org/model", {"inputs": "hi"}, format="json")

    assert response.status_code == 429
    assert "throttled" in response.json()["error"]


def test_rate_none__no_limit(api, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_THROTTLE_RATE": None}

    assert all(submit(api).status_code == 202 for _ in range(70))


def test_counters_live_in_the_configured_cache(api, settings, two_per_minute):
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "textclass-throttle-test",
        },
    }
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_THROTTLE_CACHE": "throttle"}
    from django.core.cache import caches

    submit(api), submit(api)

    assert any(key for key in caches["throttle"]._cache)  # the counters are there
    caches["throttle"].clear()
    assert submit(api).status_code == 202
