"""Keys of the model registry end to end: a real worker process, the loopback emulator.

The worker reads no ``MODELS``: a request carries its key, model, revision and backend, so
only the submitting process (this one) needs the registry for Hub model ids.
"""

from io import StringIO

import pytest
from django.core.management import call_command

import django_textclass
from django_textclass.models import ClassificationRequest, Status
from tests.fakes import textclass_settings
from tests.integration.helpers import MODEL, finished

pytestmark = pytest.mark.integration

NEWER = "acme/sentiment-v2"


def key(model=MODEL, revision="r1"):
    return textclass_settings(
        MODELS={"sentiment": {"MODEL": model, "REVISION": revision, "PARAMETERS": {"top_k": 1}}}
    )


def test_key__its_model_is_called_and_a_new_revision_misses_the_cache(worker, emulator):
    with key():
        (first,) = finished(django_textclass.classify("I love it", model="sentiment"))
        (same,) = finished(django_textclass.classify("I love it", model="sentiment"))
    with key(revision="r2"):
        (moved,) = finished(django_textclass.classify("I love it", model="sentiment"))

    assert [r.status for r in (first, same, moved)] == [Status.SUCCEEDED] * 3
    assert (first.model_key, first.model_id, first.revision, first.top_k) == (
        "sentiment",
        MODEL,
        "r1",
        1,
    )
    assert len(first.labels) == 1  # the key's default top_k reached the API
    assert same.reused_from_id == first.pk  # same revision: the stored answer
    assert moved.reused_from_id is None and moved.revision == "r2"
    assert [request.model_id for request in emulator.requests] == [MODEL, MODEL]
    assert all(request.body["parameters"] == {"top_k": 1} for request in emulator.requests)


def test_reclassify_wait__the_old_model_s_texts_again_with_the_new_one(
    worker, emulator, monkeypatch
):
    monkeypatch.setattr("django_textclass.management.progress.PLAIN_EVERY", 0.0)
    texts = [f"review number {n}, good" for n in range(6)]
    with key():
        finished(*django_textclass.classify(texts, model="sentiment"))
    emulator.reset()
    emulator.latency = 0.2  # the watcher sees the work in between
    out, err = StringIO(), StringIO()

    with key(NEWER, "r2"):
        call_command(
            "textclass_reclassify",
            "--key",
            "sentiment",
            "--batch-size",
            "4",
            "--wait",
            stdout=out,
            stderr=err,
        )

    created, summary = out.getvalue().splitlines()
    assert created.startswith(
        "sentiment: 6 requests of older models or revisions, 6 new "
        f"requests created for {NEWER} revision r2"
    )
    assert summary.startswith("Classified: 6 requests final in ")
    assert summary.endswith(": 6 succeeded, 0 failed, 0 cancelled.")
    assert [line for line in err.getvalue().splitlines() if line.startswith("classified: ")]
    new = ClassificationRequest.objects.filter(model_id=NEWER)
    assert sorted(new.values_list("text", flat=True)) == sorted(texts)
    assert set(new.values_list("status", "revision", "model_key")) == {
        (Status.SUCCEEDED, "r2", "sentiment")
    }
    assert sorted(emulator.texts_seen()) == sorted(texts)
    assert {request.model_id for request in emulator.requests} == {NEWER}
    assert ClassificationRequest.objects.filter(model_id=MODEL, revision="r1").count() == 6
