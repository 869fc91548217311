"""The pipeline end to end: a real Celery worker process against the loopback emulator."""

import pytest

import django_textclass
from django_textclass.models import ClassificationRequest, Status
from django_textclass.testing.emulator import Reply
from django_textclass.testing.rules import rank as emulator_rank
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"


def finished(*requests, timeout=30):
    """Wait until every request is in a terminal state; return them fresh from the DB."""
    pks = [request.pk for request in requests]

    def all_done():
        rows = list(ClassificationRequest.objects.filter(pk__in=pks).order_by("pk"))
        return rows if all(row.is_finished for row in rows) else None

    return wait_for(all_done, timeout=timeout, message=f"requests {pks} to finish")


def test_classify__worker_stores_the_ranking(worker):
    request = django_textclass.classify("I like you. I love you", model=MODEL)
    assert request.status == Status.PENDING

    (row,) = finished(request)

    assert row.status == Status.SUCCEEDED
    assert row.top_label == "POSITIVE"
    assert row.labels[0]["label"] == "POSITIVE"
    assert [item["score"] for item in row.labels] == sorted(
        (item["score"] for item in row.labels), reverse=True
    )
    assert row.attempts == 1
    assert row.started_at and row.finished_at and row.backend_ms is not None
