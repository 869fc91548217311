"""CSV export of the filtered history."""

import csv
import io

from django.http import StreamingHttpResponse
from django.urls import reverse

from django_textclass.admin.export import safe_cell
from tests.admin.data import make_request

URL = reverse("admin:django_textclass_classificationrequest_export")


def read_csv(response):
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="classification-')
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_export__filtered_rows_with_their_columns(admin_client, history, owner):
    rows = read_csv(admin_client.get(URL, {"status__exact": "failed"}))

    assert len(rows) == 2
    assert {row["uuid"] for row in rows} == {str(history[f"failed{i}"].uuid) for i in (0, 1)}
    first = rows[0]
    assert first["status"] == "failed" and first["error_code"] == "http_500"
    assert first["owner"] == "olivia" and first["attempts"] == "4"
    assert first["created_at"] == "2026-03-02T10:00:00+00:00"


def test_export__everything_newest_first(admin_client, history):
    rows = read_csv(admin_client.get(URL))

    assert len(rows) == 16
    created = [row["created_at"] for row in rows]
    assert created == sorted(created, reverse=True)


def test_export__quotes_commas_newlines_survive(admin_client, db):
    text = 'He said "hi",\nthen left; <b>bold</b>'
    make_request(text=text)

    (row,) = read_csv(admin_client.get(URL))

    assert row["text"] == text


def test_export__formula_injection_defused(admin_client, db):
    make_request(text='=HYPERLINK("http://evil.example","click")')
    make_request(text="+1+2")
    make_request(text="@SUM(A1)")
    make_request(text="-2+3")

    texts = sorted(row["text"] for row in read_csv(admin_client.get(URL)))

    assert texts == [
        "'+1+2",
        "'-2+3",
        """'=HYPERLINK("http://evil.example","click")""",
        "'@SUM(A1)",
    ]


def test_safe_cell__values():
    assert safe_cell(None) == ""
    assert safe_cell(0.5) == 0.5
    assert safe_cell("plain") == "plain"
    assert safe_cell("\tcmd") == "'\tcmd"
