"""The label-distribution dashboard: its numbers, filters, charts and tables."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_textclass import rollup
from tests.admin.data import EXPECTED_LATENCY, MODEL, OTHER_MODEL, make_request

URL = reverse("admin:django_textclass_classificationrequest_dashboard")
# The seeded history is in March 2026; without a date filter the page shows the past week.
ALL = {"created_at__gte": "2000-01-01 00:00:00+00:00"}


def get(client, params=None, **kwargs):
    return client.get(URL, {**ALL, **(params or {})}, **kwargs)


def chart(response, chart_id):
    return next(c for c in response.context["charts"] if c["id"] == chart_id)


def test_dashboard__exact_numbers_for_the_known_history(admin_client, history):
    response = get(admin_client, {"model_id": MODEL})

    assert response.status_code == 200
    assert chart(response, "label-share")["table"]["rows"] == [
        ["POSITIVE", 6, "60.0 %"],
        ["NEGATIVE", 3, "30.0 %"],
        ["NEUTRAL", 1, "10.0 %"],
    ]
    assert chart(response, "statuses")["table"]["rows"][:5] == [
        ["pending", 1],
        ["running", 1],
        ["succeeded", 10],
        ["failed", 2],
        ["cancelled", 1],
    ]
    assert chart(response, "statuses")["table"]["rows"][5][1] == "16.7 %"
    assert [row[2] for row in chart(response, "score-histogram")["table"]["rows"]] == [
        1,
        2,
        0,
        1,
        0,
        2,
        0,
        1,
        0,
        3,
    ]
    assert chart(response, "latency")["table"]["rows"][0] == ["p50", "550.0 ms", "55.0 ms"]
    assert response.context["stats"]["latency_ms"] == EXPECTED_LATENCY
    table = chart(response, "labels-over-time")["table"]
    assert (table["headers"], table["rows"]) == (
        ["Period", "POSITIVE", "NEGATIVE", "NEUTRAL"],
        [["03/01/2026", 6, 0, 0], ["03/02/2026", 0, 3, 1]],
    )
    assert chart(response, "throughput")["table"]["rows"] == [
        ["03/01/2026", 6],
        ["03/02/2026", 7],
    ]


def test_dashboard__filters_like_the_changelist(admin_client, history):
    other = get(admin_client, {"model_id": OTHER_MODEL})
    everything = get(admin_client)
    searched = get(admin_client, {"q": "negative"})

    assert other.context["stats"]["label_distribution"] == [
        {"label": "SPORTS", "count": 1, "share": 1.0},
    ]
    assert sum(everything.context["stats"]["status_counts"].values()) == 16
    assert searched.context["stats"]["status_counts"]["succeeded"] == 3


def test_dashboard__every_chart_is_svg_with_a_table(admin_client, history):
    body = get(admin_client).content.decode()

    assert body.count('<svg class="textclass-chart" role="img"') == 8
    assert body.count('<table class="textclass-table">') == 8
    for title_id in re.findall(r'aria-labelledby="(textclass-chart-\d+)-t', body):
        assert f'<title id="{title_id}-t">' in body
    assert "<script" not in body.split('id="content-main"')[1].split("</main>")[0]


def test_dashboard__hour_buckets(admin_client, history):
    response = get(admin_client, {"model_id": MODEL, "bucket": "hour"})

    rows = chart(response, "throughput")["table"]["rows"]
    # Day 1 10:00-10:59: 6 finished; day 2 10:00-10:59: 4 succeeded, 2 failed, 1 cancelled.
    assert [count for _, count in rows] == [6, 7]
    assert len(response.context["stats"]["throughput"]) == 2
    assert response.context["bucket"] == "hour"
    # The filters' links keep the bucket; the bucket is not taken for a filter.
    assert "bucket=hour" in response.content.decode()


def test_dashboard__unknown_bucket_falls_back_to_days(admin_client, history):
    response = get(admin_client, {"bucket": "week"}, follow=True)

    assert response.status_code == 200 and response.context["bucket"] == "day"
    assert "Unknown time bucket" in response.content.decode()


def test_dashboard__unknown_filter_redirects_with_error_flag(admin_client, history):
    response = get(admin_client, {"no_such_field": "1"})

    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_dashboard__labels_escaped_in_svg_and_tables(admin_client, db):
    make_request(
        text="x", status="succeeded", top_label='<script>alert("l")</script>', top_score=0.5
    )

    body = get(admin_client).content.decode()

    assert '<script>alert("l")' not in body
    assert "&lt;script&gt;alert(&quot;l&quot;)&lt;/script&gt;" in body


def test_dashboard__empty(admin_client, db):
    body = get(admin_client).content.decode()

    assert body.count("No data for these filters.") >= 6


@pytest.mark.parametrize("rolled", [False, True], ids=["from rows", "rolled up"])
def test_dashboard__query_count_does_not_grow_with_rows(admin_client, history, rolled):
    if rolled:
        assert rollup.roll() == 2

    def queries():
        with CaptureQueriesContext(connection) as captured:
            get(admin_client, {"model_id": MODEL})
        return len(captured)

    before = queries()
    for i in range(40):
        make_request(text=f"more {i}", status="succeeded", top_label="POSITIVE", top_score=0.9)
    assert queries() == before


def test_dashboard__defaults_to_the_past_week(admin_client, history):
    make_request(
        text="recent", model_id=OTHER_MODEL, status="succeeded", top_label="FRESH", top_score=0.7
    )

    response = admin_client.get(URL, {"model_id": MODEL}, follow=True)

    ((redirect, status),) = response.redirect_chain
    assert status == 302 and "created_at__gte=" in redirect and "model_id=" in redirect
    assert response.context["stats"]["label_distribution"] == []  # March 2026 is older
    everything = admin_client.get(URL, follow=True).context["stats"]
    assert everything["label_distribution"] == [{"label": "FRESH", "count": 1, "share": 1.0}]


def test_dashboard__all_time_link(admin_client, history):
    response = admin_client.get(URL, follow=True)

    link = response.context["all_time_query"]
    assert "created_at__gte=1970-01-01" in link and "created_at__lt" not in link
    assert get(admin_client).context["stats"]["status_counts"]["succeeded"] == 11


def test_dashboard__rolled_up_days__same_numbers_and_the_percentiles_say_so(admin_client, history):
    live = get(admin_client, {"model_id": MODEL})
    assert "within 1 percent" not in chart(live, "latency")["title"]

    assert rollup.roll() == 2  # the two days of March 2026
    rolled = get(admin_client, {"model_id": MODEL})

    for chart_id in (
        "label-share",
        "labels-over-time",
        "score-histogram",
        "statuses",
        "throughput",
    ):
        assert chart(rolled, chart_id)["table"] == chart(live, chart_id)["table"], chart_id
    assert "within 1 percent" in chart(rolled, "latency")["title"]
    assert rolled.context["stats"]["latency_ms"] == pytest.approx(EXPECTED_LATENCY, rel=0.01)
    # The owner filter is not kept by the roll-up: read from the rows, exact again.
    by_owner = get(admin_client, {"model_id": MODEL, "owner": "1"})
    assert by_owner.context["stats"]["percentiles_estimated"] is False
