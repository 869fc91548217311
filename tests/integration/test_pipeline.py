"""The pipeline end to end: a real Celery worker process against the loopback emulator."""

from itertools import pairwise

import pytest

import django_textclass
from django_textclass.models import BackendPace, Status
from django_textclass.testing.emulator import Reply
from django_textclass.testing.scoring import rank as emulator_rank
from tests.integration.helpers import MODEL, finished

pytestmark = pytest.mark.integration


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


def test_loading_503__retries_after_estimated_time_with_wait_for_model(worker, emulator):
    emulator.script(Reply.loading(estimated_time=1.0))
    request = django_textclass.classify("a good day", model=MODEL)

    (row,) = finished(request)

    assert row.status == Status.SUCCEEDED
    first, second = emulator.requests
    assert "x-wait-for-model" not in first.headers
    assert second.headers["x-wait-for-model"] == "true"
    assert second.received_at - first.received_at >= 1.0
    assert row.attempts == 1  # the wait for the model spent no attempt


def test_rate_limited_429__no_request_before_retry_after(worker, emulator):
    emulator.script(Reply.rate_limited(retry_after=2))
    request = django_textclass.classify("a bad day", model=MODEL)

    (row,) = finished(request)

    assert row.status == Status.SUCCEEDED
    first, second = emulator.requests
    assert first.status == 429 and second.status == 200
    assert second.received_at - first.received_at >= 2.0
    assert "x-wait-for-model" not in second.headers


def test_server_errors__retried_until_success(worker, emulator):
    emulator.script(Reply.server_error(500), Reply.server_error(502), Reply.server_error(504))
    request = django_textclass.classify("great stuff", model=MODEL)

    (row,) = finished(request)

    assert row.status == Status.SUCCEEDED
    assert [r.status for r in emulator.requests] == [500, 502, 504, 200]
    # The third failure in a row opened the circuit (CIRCUIT_FAILURES 3): refunded.
    assert row.attempts == 3
    assert row.error_code == ""


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply.error(401, "Invalid credentials in Authorization header"), "http_401"),
        (Reply.error(402, "You have exceeded your monthly included credits"), "http_402"),
        (Reply.plain(404, "Not Found"), "http_404"),
        (Reply.malformed(), "invalid_response"),
    ],
)
def test_permanent_error__one_call_and_failed_row(worker, emulator, reply, code):
    emulator.script(reply)
    request = django_textclass.classify("anything", model=MODEL)

    (row,) = finished(request)

    assert row.status == Status.FAILED
    assert row.error_code == code
    assert row.attempts == 1
    assert len(emulator.requests) == 1
    assert "hf_test_token_not_secret" not in row.error_message


def test_persistent_500s__the_circuit_opens_and_one_probe_at_a_time_goes(worker, emulator):
    """A text the API fails again and again with nothing else succeeding is an outage."""
    emulator.script(*[Reply.server_error(500)] * 5)
    request = django_textclass.classify("doomed, for a while", model=MODEL)

    (row,) = finished(request)

    assert row.status == Status.SUCCEEDED
    calls = emulator.requests
    assert [call.status for call in calls] == [500] * 5 + [200]
    # CIRCUIT_FAILURES 3 opened it; each probe then waited the open time, doubled each time
    # (CIRCUIT_OPEN_SECONDS 1, CIRCUIT_OPEN_MAX 4 in the test settings).
    gaps = [later.received_at - earlier.received_at for earlier, later in pairwise(calls)]
    assert gaps[2] >= 1.0 and gaps[3] >= 2.0 and gaps[4] >= 4.0
    assert row.attempts == 3  # two failures before the circuit opened, then the success


def test_duplicates__each_unique_text_sent_once(worker, emulator):
    texts = ["I love it", "I hate it", "I love it", "meh", "I hate it"]
    first = django_textclass.classify(texts, model=MODEL)
    finished(*first)
    again = django_textclass.classify(["I love it", "meh"], model=MODEL)
    rows = finished(*again)

    assert sorted(emulator.texts_seen()) == ["I hate it", "I love it", "meh"]
    assert all(row.status == Status.SUCCEEDED for row in rows)
    assert all(row.reused_from_id is not None for row in rows)


def test_use_cache_false__calls_again_with_no_cache_header(worker, emulator):
    finished(django_textclass.classify("fresh please", model=MODEL))
    request = django_textclass.classify("fresh please", model=MODEL, use_cache=False)

    (row,) = finished(request)

    assert emulator.texts_seen() == ["fresh please", "fresh please"]
    assert emulator.requests[1].headers["x-use-cache"] == "false"
    assert row.reused_from_id is None


def test_batch_answer__mapped_back_to_the_right_rows(worker, emulator):
    emulator.latency = 0.2  # keeps the rows together in one claimed batch
    texts = ["I love this", "terrible service", "not good", "the best ever", "boring and bad"]
    requests = django_textclass.classify(texts, model=MODEL, function_to_apply="sigmoid")

    rows = finished(*requests)

    assert any(len(r.inputs) > 1 for r in emulator.requests)
    assert sorted(emulator.texts_seen()) == sorted(texts)
    for row in rows:
        expected = emulator_rank(["POSITIVE", "NEGATIVE"], row.text, "sigmoid")
        assert row.labels == expected
        assert row.top_label == expected[0]["label"]


def test_flat_answer_shape__parsed_like_the_nested_one(worker, emulator):
    emulator.shape = "flat"
    request = django_textclass.classify("I love flat lists", model=MODEL, top_k=1)

    (row,) = finished(request)

    assert row.status == Status.SUCCEEDED
    assert row.labels == emulator_rank(["POSITIVE", "NEGATIVE"], row.text, None, 1)


def test_batch_over_the_endpoint_limit__halved_and_the_limit_learnt(worker, emulator):
    emulator.max_batch = 4  # the backend sends up to 8: the emulator answers 422 beyond 4
    first = django_textclass.classify([f"first review {n}" for n in range(40)], model=MODEL)
    rows = finished(*first)
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    refused = [r for r in emulator.requests if r.status == 422]
    assert 1 <= len(refused) <= 5  # each batch of 8 at most once, until one worker learnt it
    assert BackendPace.objects.get(model_id=MODEL).batch_limit == 4

    emulator.reset()
    second = django_textclass.classify([f"second review {n}" for n in range(40)], model=MODEL)
    rows = finished(*second)

    assert {row.status for row in rows} == {Status.SUCCEEDED}
    assert [len(r.inputs) for r in emulator.requests] == [4] * 10  # no refusal paid again
