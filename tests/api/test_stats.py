"""GET /api/stats/: the dashboard's aggregation over the caller's requests."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_textclass import rollup
from django_textclass.models import ClassificationRequest, Status
from django_textclass.stats import compute_stats
from tests.api.helpers import stored

pytestmark = pytest.mark.django_db
URL = "/api/stats/"


@pytest.fixture
def history(alice, bob):
    """Alice: 3 POSITIVE, 1 NEGATIVE, 1 failed on the default model, 1 on another; Bob: 5."""
    for _ in range(3):
        stored(alice, status=Status.SUCCEEDED)
    stored(alice, status=Status.SUCCEEDED, labels=[("NEGATIVE", 0.8), ("POSITIVE", 0.2)])
    stored(alice, status=Status.FAILED, error_code="timeout")
    stored(alice, status=Status.SUCCEEDED, model="org/toxic", labels=[("toxic", 0.6)])
    for _ in range(5):
        stored(bob, status=Status.SUCCEEDED, labels=[("NEGATIVE", 0.9)])


def test_stats__own_requests_only(api, alice, history):
    body = api.get(URL).json()

    assert body["status_counts"]["succeeded"] == 5
    assert body["status_counts"]["failed"] == 1
    assert body["failure_rate"] == pytest.approx(1 / 6)
    assert {row["label"]: row["count"] for row in body["label_distribution"]} == {
        "POSITIVE": 3,
        "NEGATIVE": 1,
        "toxic": 1,
    }
    assert body["models"] == [
        {"model": "distilbert/distilbert-base-uncased-finetuned-sst-2-english", "count": 5},
        {"model": "org/toxic", "count": 1},
    ]


def test_stats__same_numbers_as_compute_stats(api, alice, history):
    body = api.get(
        URL,
        {"model": "distilbert/distilbert-base-uncased-finetuned-sst-2-english", "bucket": "hour"},
    ).json()

    expected = compute_stats(
        ClassificationRequest.objects.filter(
            owner=alice, model_id="distilbert/distilbert-base-uncased-finetuned-sst-2-english"
        ),
        bucket="hour",
    )
    for key, value in expected.items():
        assert body[key] == value, key
    shares = {row["label"]: row["share"] for row in body["label_distribution"]}
    assert shares == {"POSITIVE": 0.75, "NEGATIVE": 0.25}
    assert body["latency_ms"]["p50"] == 400.0


def test_stats_other_user__sees_only_theirs(bob_api, history):
    body = bob_api.get(URL).json()

    assert body["status_counts"]["succeeded"] == 5
    assert body["label_distribution"] == [{"label": "NEGATIVE", "count": 5, "share": 1.0}]


def test_stats_staff__sees_everyone(staff_api, history):
    assert staff_api.get(URL).json()["status_counts"]["succeeded"] == 10


def test_stats_window__default_30_days_and_explicit(api, alice):
    now = timezone.now()
    stored(alice, status=Status.SUCCEEDED, created_at=now - timedelta(days=40))
    stored(alice, status=Status.SUCCEEDED, created_at=now - timedelta(days=2))

    assert api.get(URL).json()["status_counts"]["succeeded"] == 1
    wide = api.get(URL, {"since": (now - timedelta(days=50)).isoformat()}).json()
    assert wide["status_counts"]["succeeded"] == 2
    hourly = api.get(URL, {"bucket": "hour"}).json()
    assert hourly["status_counts"]["succeeded"] == 0  # default hour window: 48 hours


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"bucket": "week"}, "bucket"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since"),
        ({"since": "2020-01-01T00:00:00Z", "bucket": "hour"}, "since"),
        ({"until": "not a date"}, "until"),
        ({"model": "../admin"}, "model"),
        # Found by the fuzz run: the default window before year 1 overflowed (500).
        ({"until": "0001-01-01T00:01:00Z"}, "until"),
        ({"since": "9999-12-31T23:00:00-05:00"}, "since"),
    ],
)
def test_stats_bad_parameter__400(api, query, field):
    response = api.get(URL, query)

    assert response.status_code == 400
    assert field in response.json()


def test_stats_anonymous__refused():
    from tests.api.helpers import client_for

    assert client_for(None).get(URL).status_code == 403


def test_stats_staff__rolled_up_days__same_counts_estimated_percentiles(staff_api, history):
    ClassificationRequest.objects.update(created_at=timezone.now() - timedelta(days=3))
    live = staff_api.get(URL).json()
    assert live["percentiles_estimated"] is False

    assert rollup.roll() == 1
    rolled = staff_api.get(URL).json()

    assert rolled["percentiles_estimated"] is True
    for key in (
        "label_distribution",
        "labels_over_time",
        "score_histogram",
        "status_counts",
        "failure_rate",
        "throughput",
        "models",
    ):
        assert rolled[key] == live[key], key
    assert rolled["latency_ms"]["p50"] == pytest.approx(live["latency_ms"]["p50"], rel=0.01)


def test_stats_user__never_rolled_up(api, history):
    ClassificationRequest.objects.update(created_at=timezone.now() - timedelta(days=3))
    rollup.roll()

    assert api.get(URL).json()["percentiles_estimated"] is False


def test_stats__shows_the_pacing_state_every_worker_obeys(api):
    from django_textclass.services import pacing

    until = pacing.rate_limited("default", 4.0)
    pacing.failed("default", "timeout")

    (pace,) = api.get(URL).json()["backends"]

    assert pace["backend"] == "default" and pace["model"] is None
    assert (pace["circuit"], pace["reason"], pace["failures"]) == ("closed", "rate_limited", 1)
    assert pace["last_error"] == "timeout"
    assert pace["not_before"].replace("Z", "+00:00") == until.isoformat()
