"""The dashboard's window, and its comparison with the previous period of the same length."""

from datetime import datetime, timedelta, timezone

import pytest
from django.http import QueryDict
from django.urls import reverse

from django_textclass.admin import periods
from tests.admin.data import MODEL

URL = reverse("admin:django_textclass_classificationrequest_dashboard")
UTC = timezone.utc


def window(query):
    return periods.window(QueryDict(query), "created_at", now=datetime(2026, 3, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "created_at__gte=2026-03-02+00:00:00%2B00:00&created_at__lt=2026-03-03+00:00:00%2B00:00",
            (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)),
        ),
        (
            "created_at__gte=2026-03-02",
            (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)),
        ),
        (
            "created_at__year=2026&created_at__month=2",
            (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ),
        (
            "created_at__year=2025&created_at__month=12&created_at__day=31",
            (datetime(2025, 12, 31, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
        ),
        (
            "created_at__year=2026&created_at__gte=2026-06-01",  # both: where they overlap
            (datetime(2026, 6, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ),
        ("created_at__gte=1970-01-01+00:00:00%2B00:00", None),  # all time: nothing before it
        ("created_at__lt=2026-03-01", None),  # no start
        ("", None),
        ("created_at__gte=yesterday", None),
        ("created_at__year=2026&created_at__month=13", None),
        ("created_at__gte=2026-03-05&created_at__lt=2026-03-01", None),
    ],
)
def test_window__from_the_changelist_date_parameters(query, expected, settings):
    settings.TIME_ZONE = "UTC"

    assert window(query) == expected


def test_previous__same_length_ending_where_the_window_starts():
    span = (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))

    assert periods.previous(span) == (datetime(2026, 2, 27, tzinfo=UTC), span[0])


def test_shifted__replaces_the_dates_and_keeps_the_other_filters():
    query = QueryDict("created_at__year=2026&created_at__month=3&model_id=a%2Fb&q=x")

    moved = periods.shifted(
        query, "created_at", (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    )

    assert dict(moved.items()) == {
        "model_id": "a/b",
        "q": "x",
        "created_at__gte": "2026-01-01 00:00:00+00:00",
        "created_at__lt": "2026-02-01 00:00:00+00:00",
    }


DAY2_WINDOW = {
    "created_at__gte": "2026-03-02 00:00:00+00:00",
    "created_at__lt": "2026-03-03 00:00:00+00:00",
}


def test_comparison__the_second_day_against_the_first(admin_client, history):
    response = admin_client.get(URL, {**DAY2_WINDOW, "model_id": MODEL})

    rows = {row[0]: row[1:] for row in response.context["comparison"]["rows"]}
    assert rows["Requests"] == ["9", "6", "+3 (+50.0 %)"]
    assert rows["succeeded"] == ["4", "6", "-2 (-33.3 %)"]
    assert rows["failed"] == ["2", "0", "+2"]
    assert rows["failure rate"] == ["33.3 %", "0.0 %", "+33.3 pp"]
    assert rows["submission to result p50"] == ["850.0 ms", "350.0 ms", "+500.0 ms (+142.9 %)"]
    assert rows["share of POSITIVE"] == ["0.0 %", "100.0 %", "-100.0 pp"]
    assert rows["share of NEGATIVE"] == ["75.0 %", "0.0 %", "+75.0 pp"]
    body = response.content.decode()
    assert "Compared with the previous period of the same length" in body


def test_comparison__the_previous_period_link_opens_its_dashboard(admin_client, history):
    response = admin_client.get(URL, {**DAY2_WINDOW, "model_id": MODEL})

    before = admin_client.get(URL + response.context["previous_query"])

    assert before.status_code == 200
    assert before.context["stats"]["status_counts"]["succeeded"] == 6
    assert before.context["span"] == (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert before.context["comparison"]["rows"][0] == ["Requests", "6", "0", "+6"]


def test_comparison__none_for_all_time(admin_client, history):
    response = admin_client.get(URL, {"created_at__gte": "1970-01-01 00:00:00+00:00"})

    assert response.context["comparison"] is None
    assert "to compare it with the previous period" in response.content.decode()


def test_comparison__costs_the_same_queries_whatever_the_rows(admin_client, history):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.admin.data import make_request

    def queries():
        with CaptureQueriesContext(connection) as captured:
            admin_client.get(URL, {**DAY2_WINDOW, "model_id": MODEL})
        return len(captured)

    before = queries()
    for i in range(30):
        make_request(
            text=f"more {i}",
            status="failed",
            error_code=f"code_{i % 3}",
            created_at=datetime(2026, 3, 2, 12, tzinfo=UTC) - timedelta(days=i % 2),
        )
    assert queries() == before
