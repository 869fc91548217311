"""The read-only detail page of one request."""

from django.urls import reverse

from django_textclass.models import ClassificationScore, RequestEvent
from tests.admin.data import make_request


def url(request):
    return reverse("admin:django_textclass_classificationrequest_change", args=[request.pk])


def test_detail__full_text_labels_with_bars_parameters_timings(admin_client, history):
    row = history["succeeded4"]
    row.function_to_apply, row.top_k = "softmax", 2
    row.save()

    body = admin_client.get(url(row)).content.decode()

    assert row.text in body
    assert '<table class="textclass-scores">' in body
    assert "<td>POSITIVE</td>" in body and "0.9500" in body and "width:95.0%" in body
    assert "<td>OTHER</td>" in body and "0.0500" in body
    assert "softmax" in body and ">2<" in body  # parameters
    assert "0.500 s" in body  # duration
    assert "default" in body  # backend alias


def test_detail__long_text_shown_whole(admin_client, db):
    text = "long " * 400
    row = make_request(text=text)

    body = admin_client.get(url(row)).content.decode()

    assert text.strip() in body


def test_detail__error_code_and_message(admin_client, history):
    body = admin_client.get(url(history["failed0"])).content.decode()

    assert "http_500" in body and "server error" in body


def test_detail__labels_and_text_escaped(admin_client, db):
    row = make_request(
        text="<script>alert(1)</script>", status="succeeded", top_label="<b>bold</b>", top_score=0.5
    )
    ClassificationScore.objects.create(request=row, rank=0, label="<b>bold</b>", score=0.5)

    body = admin_client.get(url(row)).content.decode()

    assert "<script>alert(1)</script>" not in body and "<b>bold</b>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body


def test_detail__read_only(admin_client, history):
    row = history["succeeded0"]

    body = admin_client.get(url(row)).content.decode()

    assert 'name="status"' not in body and 'name="text"' not in body
    assert admin_client.post(url(row), {"status": "failed", "text": "x"}).status_code == 403
    row.refresh_from_db()
    assert row.status == "succeeded" and row.text == "text 0 positive"


def test_add__not_offered(admin_client, db):
    assert (
        admin_client.get(reverse("admin:django_textclass_classificationrequest_add")).status_code
        == 403
    )


def test_detail__waits_and_retries_with_their_reasons(admin_client, db):
    row = make_request(status="pending")
    RequestEvent.objects.create(
        request=row,
        kind="wait",
        reason="circuit_open",
        attempts=1,
        wait_seconds=30.0,
        message="cannot connect to <api>",
    )
    RequestEvent.objects.create(
        request=row,
        kind="retry",
        reason="http_500",
        attempts=2,
        wait_seconds=3.5,
        message="HTTP 500 from https://api",
    )

    body = admin_client.get(url(row)).content.decode()

    assert "waits and retries" in body.lower()
    assert "<td>circuit_open</td>" in body and "30 s" in body
    assert "<td>http_500</td>" in body and "3.5 s" in body
    assert "cannot connect to &lt;api&gt;" in body  # escaped
    assert body.index("circuit_open") < body.index("http_500")  # oldest first
