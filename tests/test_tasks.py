"""The Celery envelopes: options, and what a published message carries."""

import json

import pytest
from celery.signals import before_task_publish

import django_textclass
from django_textclass import dispatch, tasks

SECRET_TEXT = "my private review that must not reach the broker"


def test_run_batch__acks_late_json_and_no_result():
    assert tasks.run_batch.acks_late is True
    assert tasks.run_batch.serializer == "json"
    assert tasks.run_batch.ignore_result is True
    assert tasks.run_batch.name == "django_textclass.run_batch"


def test_sweep__is_a_named_json_task():
    assert tasks.sweep.name == "django_textclass.sweep"
    assert tasks.sweep.serializer == "json"


@pytest.mark.django_db(transaction=True)
def test_published_message__carries_ids_only(settings):
    published = []

    def capture(sender=None, body=None, headers=None, **kwargs):
        published.append({"task": sender, "body": body, "headers": headers})

    before_task_publish.connect(capture)
    try:
        request = django_textclass.classify(SECRET_TEXT)
        assert dispatch.flush(timeout=10)  # published by the process's publishing thread
    finally:
        before_task_publish.disconnect(capture)

    assert [message["task"] for message in published] == ["django_textclass.run_batch"]
    args, kwargs, _ = published[0]["body"]
    assert args == [[request.pk]] and kwargs == {}
    wire = json.dumps(published[0], default=str)
    assert SECRET_TEXT not in wire
    token = settings.TEXTCLASS["BACKENDS"]["default"]["OPTIONS"]["TOKEN"]
    assert token not in wire
