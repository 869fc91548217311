"""Every bar, column piece and row of the dashboard opens the history filtered to it.

The strongest form of "filters in links must be ones the changelist accepts": each link is
opened, and the changelist must count exactly the requests the bar or row counts.
"""

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from django_textclass.models import ClassificationRequest
from tests.admin.data import DAY2, MODEL, make_request

URL = reverse("admin:django_textclass_classificationrequest_dashboard")
ALL = {"created_at__gte": "2000-01-01 00:00:00+00:00"}


def chart(response, chart_id):
    return next(c for c in response.context["charts"] if c["id"] == chart_id)


def count_at(client, link):
    response = client.get(link)
    assert response.status_code == 200, (link, response.status_code)
    assert "cl" in response.context, link  # the changelist, not its ?e=1 error redirect
    return response.context["cl"].result_count


def expected_rows(response):
    """``[(link, number)]`` of every table row with a link, and its number of requests."""
    pairs = []
    for chart_id, column in (
        ("label-share", 1),
        ("score-histogram", 2),
        ("statuses", 1),
        ("failures", 1),
        ("throughput", 1),
    ):
        table = chart(response, chart_id)["table"]
        pairs += [(link, row[column]) for row, link in table["linked_rows"] if link]
    over_time = chart(response, "labels-over-time")["table"]
    pairs += [(link, sum(row[1:])) for row, link in over_time["linked_rows"]]
    shares = chart(response, "label-shares-over-time")["table"]
    assert shares["links"] == over_time["links"]
    return pairs


def svg_links(body):
    return [
        html.unescape(href)
        for href in re.findall(r'<a class="textclass-link" href="([^"]+)">', body)
    ]


@pytest.mark.parametrize("bucket", ["day", "hour"])
@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_links__each_row_opens_exactly_its_requests(admin_client, history, settings, bucket, zone):
    settings.TIME_ZONE = zone
    response = admin_client.get(URL, {**ALL, "model_id": MODEL, "bucket": bucket})

    pairs = expected_rows(response)

    assert len(pairs) > 15
    for link, number in pairs:
        assert "model_id=acme%2Fsentiment" in link and "bucket=" not in link
        assert count_at(admin_client, link) == number, link


def test_links__each_column_piece_opens_its_label_in_its_bucket(admin_client, history):
    response = admin_client.get(URL, {**ALL, "bucket": "day"})
    body = response.content.decode()
    over_time = response.context["stats"]["labels_over_time"]

    pieces = [link for link in svg_links(body) if "top_label=" in link and "created_at__lt" in link]

    assert len(pieces) == len(over_time) * 2  # drawn in both label charts
    counts = {(row["bucket"][:10], row["label"]): row["count"] for row in over_time}
    for link in pieces:
        label = re.search(r"top_label=([^&]+)", link).group(1)
        day = re.search(r"created_at__gte=(\d{4}-\d\d-\d\d)", link).group(1)
        assert count_at(admin_client, link) == counts[(day, label)], link


def test_links__every_svg_link_is_accepted_by_the_changelist(admin_client, history):
    body = admin_client.get(URL, ALL).content.decode()

    links = set(svg_links(body))

    assert len(links) > 20
    for link in links:
        count_at(admin_client, link)


def test_links__a_window_narrower_than_its_bucket_is_kept(admin_client, history):
    # From 10:07 on day 2 (after the first NEGATIVE): the day's column counts only what the
    # window holds, and so does its link.
    start = DAY2 + timedelta(minutes=7)
    params = {"created_at__gte": str(start), "created_at__lt": str(DAY2 + timedelta(days=1))}
    response = admin_client.get(URL, {**params, "model_id": MODEL})

    table = chart(response, "labels-over-time")["table"]

    assert table["rows"] == [["03/02/2026", 2, 1]]
    assert count_at(admin_client, table["links"][0]) == 3


def test_links__latency_percentiles_open_the_requests_at_least_that_slow(admin_client, history):
    response = admin_client.get(URL, {**ALL, "model_id": MODEL})
    table = chart(response, "latency")["table"]

    p50, p90, p99 = (count_at(admin_client, link) for link in table["links"])

    # Latencies 100, 200 ... 1000 ms: 5 of them take 550 ms or more, 1 takes 910 ms or more.
    assert (p50, p90, p99) == (5, 1, 1)
    backend = [
        link
        for link in svg_links(response.content.decode())
        if re.search(r"backend_slower_than_ms=55(&|$)", link)
    ]
    assert count_at(admin_client, backend[0]) == 5  # 60, 70, 80, 90, 100 ms


def test_links__the_other_labels_have_no_link(admin_client, db):
    for i in range(10):
        make_request(
            text=f"t{i}",
            status="succeeded",
            top_label=f"L{i}",
            top_score=0.5,
            finished_at=timezone.now(),
        )

    response = admin_client.get(URL, follow=True)
    body = response.content.decode()

    assert "(other)" in body
    assert not any("top_label=%28other%29" in link for link in svg_links(body))
    assert len([link for link in svg_links(body) if "top_label=L" in link]) >= 10


def test_failures__by_error_code_with_the_latest_message(admin_client, history):
    make_request(
        text="late",
        status="failed",
        created_at=DAY2,
        started_at=DAY2,
        finished_at=DAY2 + timedelta(hours=2),
        error_code="timeout",
        error_message="no answer within 5 s",
    )
    make_request(
        text="later",
        status="failed",
        created_at=DAY2,
        finished_at=DAY2 + timedelta(hours=3),
        error_code="http_500",
        error_message="the newest <b>500</b>",
    )

    response = admin_client.get(URL, ALL)

    rows = chart(response, "failures")["table"]["rows"]
    assert [(row[0], row[1], row[3]) for row in rows] == [
        ("http_500", 3, "the newest <b>500</b>"),
        ("timeout", 1, "no answer within 5 s"),
    ]
    body = response.content.decode()
    assert "the newest &lt;b&gt;500&lt;/b&gt;" in body and "<b>500</b>" not in body


def test_failures__no_failures_no_rows(admin_client, db):
    make_request(text="fine", status="succeeded", top_label="OK", top_score=0.9)

    response = admin_client.get(URL, follow=True)

    assert chart(response, "failures")["table"]["rows"] == []


def test_label_shares_over_time__each_bucket_sums_to_one(admin_client, history):
    response = admin_client.get(URL, {**ALL, "model_id": MODEL})

    table = chart(response, "label-shares-over-time")["table"]

    assert table["headers"] == ["Period", "POSITIVE", "NEGATIVE", "NEUTRAL"]
    assert table["rows"] == [
        ["03/01/2026", "100.0 %", "0.0 %", "0.0 %"],
        ["03/02/2026", "0.0 %", "75.0 %", "25.0 %"],
    ]


def test_changelist__new_filters_reject_nothing_and_match_nothing_when_malformed(
    admin_client, history
):
    changelist = reverse("admin:django_textclass_classificationrequest_changelist")
    for params in (
        {"top_score_bin": "x"},
        {"top_score_bin": "10"},
        {"slower_than_ms": "-1"},
        {"backend_slower_than_ms": "fast"},
    ):
        assert (
            count_at(
                admin_client,
                changelist + "?" + "&".join(f"{key}={value}" for key, value in params.items()),
            )
            == 0
        )
    assert count_at(admin_client, changelist + "?error_code=http_500") == 2
    assert (
        count_at(admin_client, changelist + "?error_code=")
        == ClassificationRequest.objects.filter(error_code="").count()
    )
