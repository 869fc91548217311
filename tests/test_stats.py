"""compute_stats against a data set whose every number is known (SQLite and PostgreSQL)."""

import pytest
from django.db import connection

from django_textclass.models import ClassificationRequest
from django_textclass.stats import compute_stats
from tests.admin.data import (
    EXPECTED_BACKEND,
    EXPECTED_HISTOGRAM,
    EXPECTED_LATENCY,
    MODEL,
    seed_known_history,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    return seed_known_history()


def model_rows():
    return ClassificationRequest.objects.filter(model_id=MODEL)


def test_label_distribution__exact_counts_and_shares(history):
    stats = compute_stats(model_rows())

    assert stats["label_distribution"] == [
        {"label": "POSITIVE", "count": 6, "share": 0.6},
        {"label": "NEGATIVE", "count": 3, "share": 0.3},
        {"label": "NEUTRAL", "count": 1, "share": 0.1},
    ]


def test_status_counts__all_five_and_failure_rate(history):
    stats = compute_stats(model_rows())

    assert stats["status_counts"] == {
        "pending": 1,
        "running": 1,
        "succeeded": 10,
        "failed": 2,
        "cancelled": 1,
    }
    assert stats["failure_rate"] == pytest.approx(2 / 12)


def test_labels_over_time__per_day_and_hour(history):
    by_day = compute_stats(model_rows())["labels_over_time"]
    by_hour = compute_stats(model_rows(), bucket="hour")["labels_over_time"]

    assert by_day == [
        {"bucket": "2026-03-01T00:00:00+00:00", "label": "POSITIVE", "count": 6},
        {"bucket": "2026-03-02T00:00:00+00:00", "label": "NEGATIVE", "count": 3},
        {"bucket": "2026-03-02T00:00:00+00:00", "label": "NEUTRAL", "count": 1},
    ]
    assert [row["bucket"] for row in by_hour] == [
        "2026-03-01T10:00:00+00:00",
        "2026-03-02T10:00:00+00:00",
        "2026-03-02T10:00:00+00:00",
    ]


def test_score_histogram__ten_bins_edges_inclusive_below(history):
    histogram = compute_stats(model_rows())["score_histogram"]

    assert [row["count"] for row in histogram] == EXPECTED_HISTOGRAM
    assert histogram[0] == {"lower": 0.0, "upper": 0.1, "count": 1}
    assert histogram[-1]["upper"] == 1.0


def test_percentiles__match_percentile_cont(history):
    stats = compute_stats(model_rows())

    assert stats["latency_ms"] == EXPECTED_LATENCY
    assert stats["backend_ms"] == EXPECTED_BACKEND


def test_throughput__finished_requests_per_bucket(history):
    stats = compute_stats(model_rows())

    # Day 1: 6 succeeded; day 2: 4 succeeded + 2 failed + 1 cancelled.
    assert stats["throughput"] == [
        {"bucket": "2026-03-01T00:00:00+00:00", "count": 6},
        {"bucket": "2026-03-02T00:00:00+00:00", "count": 7},
    ]


def test_empty_queryset__zeros_and_nones():
    stats = compute_stats(ClassificationRequest.objects.all())

    assert stats["label_distribution"] == []
    assert stats["labels_over_time"] == [] and stats["throughput"] == []
    assert set(stats["status_counts"].values()) == {0}
    assert stats["failure_rate"] is None
    assert stats["latency_ms"] == {"p50": None, "p90": None, "p99": None}
    assert [row["count"] for row in stats["score_histogram"]] == [0] * 10


def test_single_row__every_percentile_is_that_value(history):
    stats = compute_stats(ClassificationRequest.objects.filter(pk=history["succeeded3"].pk))

    assert stats["latency_ms"] == {"p50": 400.0, "p90": 400.0, "p99": 400.0}


def test_caller_filter_and_ordering_are_respected(history):
    rows = ClassificationRequest.objects.filter(model_id=MODEL, top_label="NEGATIVE")
    stats = compute_stats(rows.order_by("-top_score", "text"))

    assert stats["label_distribution"] == [{"label": "NEGATIVE", "count": 3, "share": 1.0}]
    assert stats["status_counts"]["succeeded"] == 3


def test_result_is_json_serialisable(history):
    import json

    json.dumps(compute_stats(model_rows(), bucket="hour"))


def test_bad_bucket__rejected():
    with pytest.raises(ValueError, match="bucket"):
        compute_stats(ClassificationRequest.objects.all(), bucket="week")


def test_one_grouped_query_per_chart(history, django_assert_num_queries):
    # PostgreSQL: 6 (one per chart; the failure rate is derived) + SAVEPOINT, SET LOCAL and
    # RELEASE of the reporting transaction + the roll-up's list of rolled days (none
    # here). Elsewhere each percentile set costs a COUNT plus one OFFSET query per
    # percentile: 1 + 5 + 2 * 4.
    expected = 10 if connection.vendor == "postgresql" else 14
    with django_assert_num_queries(expected):
        compute_stats(model_rows())


def test_failures_by_code__read_from_the_failed_rows_index():
    """The failures chart reads the partial index of failed rows, not the table."""
    from django.db.models import Count

    from django_textclass.stats import failures_by_code

    if connection.vendor != "postgresql":
        pytest.skip("query plans are PostgreSQL's")
    queryset = ClassificationRequest.objects.filter(created_at__gte="2026-01-01T00:00:00Z")
    failed = queryset.order_by().filter(status="failed")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # an empty table: no cheaper scan wins
        plan = failed.values("error_code").annotate(n=Count("*")).explain()

    assert "textclass_req_failed" in plan
    assert failures_by_code(queryset) == []
