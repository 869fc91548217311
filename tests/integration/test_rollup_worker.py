"""The roll-up with real parts: beat schedules it, a worker runs it, a late result marks its day."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from django_textclass import rollup, services
from django_textclass.models import ClassificationRequest, RollupDay, RollupDirtyDay, Status
from django_textclass.stats import compute_stats
from tests.faults.processes import Beat
from tests.helpers import ROOT, wait_for
from tests.integration.helpers import MODEL, finished

pytestmark = pytest.mark.integration


def days_ago(days):
    return timezone.now() - timedelta(days=days)


def test_beat_schedules_the_rollup_and_a_worker_runs_it(worker, tmp_path):
    created = days_ago(3)
    ClassificationRequest.objects.bulk_create(
        ClassificationRequest(
            model_id=MODEL,
            text=f"old {i}",
            text_hash=f"{i:064d}",
            backend="default",
            status=Status.SUCCEEDED,
            top_label="POSITIVE",
            top_score=0.9,
            backend_ms=40 + i,
            created_at=created,
            finished_at=created + timedelta(milliseconds=100 + i),
        )
        for i in range(5)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEXTCLASS_TEST_WORKER": "1"}
    log_path = tmp_path / "beat.log"
    beat = Beat(log_path, env, interval=0.5).start()
    try:
        day = rollup.day_start(created.astimezone(rollup.UTC).date()).date()
        wait_for(
            lambda: RollupDay.objects.filter(day=day, requests=5).exists(),
            message="the worker to roll the day up",
        )
    finally:
        beat.stop()

    assert "django_textclass.rollup" in Path(log_path).read_text()
    stats = compute_stats(ClassificationRequest.objects.filter(created_at__gte=days_ago(30)))
    assert stats["percentiles_estimated"] is True
    assert stats["status_counts"]["succeeded"] == 5


def test_a_worker_finishing_a_request_of_a_rolled_day__marks_the_day(worker, emulator):
    request = ClassificationRequest.objects.create(
        model_id=MODEL,
        text="I love late results",
        text_hash="1" * 64,
        backend="default",
        created_at=days_ago(2),
        next_attempt_at=timezone.now() - timedelta(seconds=60),
    )
    day = request.created_at.astimezone(rollup.UTC).date()
    assert rollup.roll() >= 1  # the day is summed with the request still pending
    before = compute_stats(ClassificationRequest.objects.all())
    assert before["percentiles_estimated"] is True and before["status_counts"]["pending"] == 1

    services.sweep()  # sends the lost wake-up; the worker classifies the request
    (row,) = finished(request)

    assert row.status == Status.SUCCEEDED
    assert set(RollupDirtyDay.objects.values_list("day", flat=True)) == {day}
    after = compute_stats(ClassificationRequest.objects.all())
    assert after["status_counts"]["pending"] == 0 and after["status_counts"]["succeeded"] == 1
    assert rollup.roll() == 1
    assert not RollupDirtyDay.objects.exists()
    assert (
        compute_stats(ClassificationRequest.objects.all())["status_counts"]
        == (after["status_counts"])
    )
