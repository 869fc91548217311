"""TEI and dedicated endpoints end to end: a real Celery worker against the emulator.

The worker's settings (tests/settings.py) point three aliases at the emulator: ``tei`` (the
TEI backend, for the emulator's TEI mode), ``tei-root`` (the Hugging Face backend at TEI's
``/`` route, the trap) and ``endpoint`` (the Hugging Face backend at a fixed URL, a
dedicated endpoint, with ``SCALE_UP_TIMEOUT`` 3).
"""

import pytest

import django_textclass
from django_textclass.models import RequestEvent, Status
from django_textclass.testing import Reply, TEIMode
from django_textclass.testing.scoring import rank
from tests.integration.helpers import MODEL, finished

pytestmark = pytest.mark.integration

LABELS = ["POSITIVE", "NEGATIVE"]
#: Every test of this module serves TEI with the same limit: a worker keeps what it read
#: from /info for minutes, across tests.
TEI = TEIMode(model_id=MODEL, max_client_batch_size=3)


def predictions(emulator, path="/predict"):
    return [request for request in emulator.requests if request.path == path]


def assert_ranked_alone(row, function=None):
    """The row holds the emulator's full ranking of its text alone."""
    expected = rank(LABELS, row.text, function)
    assert [item["label"] for item in row.labels] == [item["label"] for item in expected]
    assert [item["score"] for item in row.labels] == pytest.approx(
        [item["score"] for item in expected], rel=1e-9
    )


# --- the TEI backend ------------------------------------------------------------------------


def test_tei__batches_go_as_lists_of_one_within_the_servers_limit(worker, emulator):
    emulator.tei = TEI
    emulator.latency = 0.2  # the rows wait together, so calls carry several texts
    texts = [
        "I love it",
        "I hate it",
        "a great day",
        "a bad day",
        "so boring",
        "the best",
        "not good",
    ]

    rows = finished(
        *django_textclass.classify(texts, model=MODEL, backend="tei", function_to_apply="sigmoid")
    )

    assert {row.status for row in rows} == {Status.SUCCEEDED}
    for row in rows:
        assert_ranked_alone(row, "sigmoid")
    answered = [request for request in predictions(emulator) if request.status == 200]
    assert sorted(text for request in answered for text in request.inputs) == sorted(texts)
    batches = [
        request.body["inputs"] for request in answered if isinstance(request.body["inputs"], list)
    ]
    assert batches, "some calls carried several texts"
    assert all(
        all(isinstance(item, list) and len(item) == 1 for item in batch) for batch in batches
    )
    assert max(len(batch) for batch in batches) <= 3
    assert all(request.body["raw_scores"] is True for request in answered)
    # A worker that had not read /info yet may send one batch over the limit, once.
    assert len([r for r in predictions(emulator) if r.status == 422]) <= 2


def test_tei__overloaded_429_waits_without_spending_an_attempt(worker, emulator):
    emulator.tei = TEI
    emulator.script(Reply.tei_error("Overloaded"))

    (row,) = finished(django_textclass.classify("a good day", model=MODEL, backend="tei"))

    assert row.status == Status.SUCCEEDED and row.attempts == 1
    first, second = predictions(emulator)
    assert (first.status, second.status) == (429, 200)
    assert second.received_at - first.received_at >= 0.9  # RATE_LIMIT_WAIT, 1 s


def test_tei__a_text_over_the_token_limit_fails_alone(worker, emulator):
    emulator.tei = TEIMode(
        model_id=MODEL, max_client_batch_size=3, max_input_length=6, auto_truncate=False
    )
    emulator.latency = 0.2
    long_text = "this text has far more words than the model takes"
    texts = ["I love it", long_text, "I hate it"]

    rows = finished(*django_textclass.classify(texts, model=MODEL, backend="tei"))

    by_text = {row.text: row for row in rows}
    assert by_text[long_text].status == Status.FAILED
    assert by_text[long_text].error_code == "http_422"
    assert "must have less than 6 tokens" in by_text[long_text].error_message
    for text in ("I love it", "I hate it"):
        assert by_text[text].status == Status.SUCCEEDED
        assert_ranked_alone(by_text[text])


# --- the Hugging Face backend at TEI's `/`: the trap ----------------------------------------


def test_tei_trap__two_texts_read_as_a_pair_are_refused_then_sent_alone(worker, emulator):
    emulator.tei = TEI
    texts = ["I love it", "I hate it"]

    rows = finished(*django_textclass.classify(texts, model=MODEL, backend="tei-root"))

    # Before: the pair's flat ranking was stored as POSITIVE for one, NEGATIVE for the other.
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    for row in rows:
        assert_ranked_alone(row)
        assert row.attempts == 1
    calls = predictions(emulator, "/")
    assert calls[0].body["inputs"] == texts and calls[0].status == 200
    assert sorted(call.body["inputs"] for call in calls[1:]) == sorted(texts)


def test_tei_trap__three_texts_refused_by_tei_end_up_alone_too(worker, emulator):
    emulator.tei = TEI
    texts = ["I love it", "I hate it", "a great day"]

    rows = finished(*django_textclass.classify(texts, model=MODEL, backend="tei-root"))

    assert {row.status for row in rows} == {Status.SUCCEEDED}
    for row in rows:
        assert_ranked_alone(row)
    calls = predictions(emulator, "/")
    assert calls[0].status == 422  # three strings are no TEI input at all
    assert all(
        isinstance(call.body["inputs"], str)
        for call in calls
        if call.status == 200 and len(call.inputs) == 1
    )


# --- a dedicated endpoint -------------------------------------------------------------------


def test_endpoint__503s_while_waking_are_waited_out_without_spending_attempts(worker, emulator):
    emulator.shape = "toolkit"  # a dedicated endpoint's Inference Toolkit
    emulator.script(Reply.unavailable(), Reply.unavailable())

    (row,) = finished(django_textclass.classify("a good day", model=MODEL, backend="endpoint"))

    assert row.status == Status.SUCCEEDED and row.attempts == 1
    assert_ranked_alone(row)  # every label, though the Toolkit keeps one by default
    calls = emulator.requests
    assert [call.status for call in calls] == [503, 503, 200]
    assert all(call.headers["x-scale-up-timeout"] == "3" for call in calls)
    assert all(call.body["parameters"] == {"top_k": None} for call in calls)
    assert all(
        later.received_at - earlier.received_at >= 0.9  # RATE_LIMIT_WAIT, 1 s
        for earlier, later in zip(calls, calls[1:], strict=False)
    )
    waits = RequestEvent.objects.filter(request_id=row.pk, kind=RequestEvent.Kind.WAIT)
    assert [event.reason for event in waits.order_by("pk")] == ["model_loading"] * 2


def test_endpoint__a_batch_gets_every_label_of_every_text(worker, emulator):
    emulator.shape = "toolkit"
    emulator.latency = 0.2
    texts = ["I love it", "I hate it", "a great day", "a bad day"]

    rows = finished(*django_textclass.classify(texts, model=MODEL, backend="endpoint"))

    assert {row.status for row in rows} == {Status.SUCCEEDED}
    for row in rows:
        assert_ranked_alone(row)
    assert any(isinstance(call.body["inputs"], list) for call in emulator.requests)
