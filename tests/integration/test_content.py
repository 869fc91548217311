"""Registered content end to end: a real Celery worker process against the emulator."""

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from django_textclass import dispatch, services
from django_textclass.models import ClassificationRequest, RuleFiring, Status
from tests.content.helpers import OTHER, SENTIMENT, requests_of
from tests.helpers import ROOT, wait_for
from tests.integration.helpers import finished
from tests.testapp.models import Comment, SignalLog, Ticket

pytestmark = pytest.mark.integration


def test_task_runs_twice__signals_and_rules_fire_once_per_result(worker, emulator):
    emulator.latency = 0.5  # the duplicates arrive while the first run is calling
    comment = Comment.objects.create(title="", body="I hate this, terrible")
    rows = requests_of(comment)
    ids = [row.pk for row in rows]
    dispatch.send(ids)
    dispatch.send(ids)

    rows = finished(*rows)
    time.sleep(1.5)  # let the duplicate messages run out

    assert {row.status for row in rows} == {Status.SUCCEEDED}
    assert sorted(emulator.texts_seen()) == ["I hate this, terrible"] * 2  # one call per model
    logged = SignalLog.objects.filter(kind="succeeded")
    assert sorted(log.request_uuid for log in logged) == sorted(row.uuid for row in rows)
    body = next(row for row in rows if row.model_id == SENTIMENT)
    firings = {f.rule: f for f in RuleFiring.objects.all()}
    assert set(firings) == {"hide negative", "explodes"}
    assert {f.request_id for f in firings.values()} == {body.pk}
    assert firings["hide negative"].outcome == "ok"
    assert firings["explodes"].outcome == "error"
    comment.refresh_from_db()
    assert comment.hidden is True
    assert len(requests_of(comment)) == 2  # hiding it classified nothing again


SAVE_SCRIPT = """
import tests.celery_app  # sets up Django and the Celery app, as a project's __init__ does
from tests.testapp.models import Comment
comment = Comment.objects.create(title="", body="I love the sweep")
print(comment.pk)
"""


def test_broker_down_during_save__save_succeeds_and_sweep_sends_later(worker, emulator):
    # A separate process, like a web server, whose broker is unreachable.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEXTCLASS_TEST_WORKER": "1",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TEXTCLASS_TEST_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",  # nothing listens
    }
    result = subprocess.run(
        [sys.executable, "-c", SAVE_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "the sweep will send them" in result.stderr
    comment = Comment.objects.get(pk=int(result.stdout.split()[-1]))
    rows = requests_of(comment)
    assert sorted(row.model_id for row in rows) == sorted([SENTIMENT, OTHER])
    time.sleep(0.5)
    assert {row.status for row in requests_of(comment)} == {Status.PENDING}

    ClassificationRequest.objects.filter(pk__in=[r.pk for r in rows]).update(
        next_attempt_at=timezone.now() - timedelta(seconds=60)
    )
    assert services.sweep()["dispatched"] == 2

    rows = finished(*rows)
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    assert {row.top_label for row in rows} == {"POSITIVE"}
    wait_for(
        lambda: SignalLog.objects.filter(kind="succeeded").count() == 2,
        message="the success signals",
    )


def test_split_text__chunks_classified_parent_combined_and_signalled_once(worker, emulator):
    text = "I love this product. " * 3 + "The delivery was terrible and slow. " * 2
    ticket = Ticket.objects.create(body=text)
    (parent,) = requests_of(ticket)

    (parent,) = finished(parent)

    chunks = list(parent.chunks.order_by("chunk_index"))
    assert parent.status == Status.SUCCEEDED
    assert parent.long_text_policy == "split_mean"
    assert len(chunks) >= 3 and all(len(c.text) <= 40 for c in chunks)
    assert sorted(emulator.texts_seen()) == sorted(c.text for c in chunks)  # never the whole
    means = {}
    for chunk in chunks:
        for item in chunk.labels:
            means[item["label"]] = means.get(item["label"], 0) + item["score"] / len(chunks)
    assert {i["label"]: pytest.approx(i["score"]) for i in parent.labels} == means
    wait_for(lambda: SignalLog.objects.filter(kind="succeeded").exists(), message="the signal")
    time.sleep(0.5)
    assert list(SignalLog.objects.values_list("request_uuid", flat=True)) == [parent.uuid]


def test_backfill_wait__shows_the_classification_until_every_request_is_final(
    worker, emulator, monkeypatch
):
    from io import StringIO

    from django.core.management import call_command

    monkeypatch.setattr("django_textclass.management.progress.PLAIN_EVERY", 0.0)
    emulator.latency = 0.3  # the watcher sees the work in between
    # bulk_create sends no post_save: the comments predate classification, as in a backfill.
    Comment.objects.bulk_create([Comment(title="", body=f"I love item {i}") for i in range(10)])
    assert ClassificationRequest.objects.count() == 0
    out, err = StringIO(), StringIO()

    call_command(
        "textclass_backfill", "testapp.Comment", "--field", "body", "--wait", stdout=out, stderr=err
    )

    created, summary = out.getvalue().splitlines()
    assert "20 requests created" in created
    assert summary.startswith("Classified: 20 requests final in ")
    assert summary.endswith(": 20 succeeded, 0 failed, 0 cancelled.")
    watched = [line for line in err.getvalue().splitlines() if line.startswith("classified: ")]
    assert watched[0].startswith("classified: 0/20 requests final")  # nothing final at first
    assert watched[-1].startswith("classified: 20/20 requests final (100 %)")
    assert ClassificationRequest.objects.filter(status=Status.SUCCEEDED).count() == 20
