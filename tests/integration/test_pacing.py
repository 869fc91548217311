"""The pipeline under pressure with two real worker processes: one pacing, one call per text."""

from itertools import pairwise

import pytest
from django.db import connection

import django_textclass
from django_textclass.models import BackendPace, ClassificationRequest, Status
from django_textclass.testing.emulator import Reply
from tests.faults.audit import audit
from tests.integration.helpers import MODEL, Worker, finished

pytestmark = pytest.mark.integration

#: Calls already in flight when a 429 was answered may still arrive this long after it.
IN_FLIGHT = 0.25


@pytest.fixture
def second_worker(worker, emulator, tmp_path):
    """Another worker process beside the session's: two hosts, as far as pacing can tell."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite takes one writer at a time: two worker processes only contend")
    other = Worker(emulator.url, tmp_path / "second-worker.log", name="second")
    other.start()
    yield other
    other.stop()


def test_rate_limited_for_several_windows__no_call_inside_a_window_and_nothing_fails(
    worker, second_worker, emulator
):
    emulator.script(*[Reply.rate_limited(retry_after=1)] * 4)
    requests = django_textclass.classify([f"text number {n}" for n in range(20)], model=MODEL)

    rows = finished(*requests, timeout=60)

    audit(rows)
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    assert {row.attempts for row in rows} == {1}  # four 429s spent nothing
    calls = emulator.requests
    limited = [call for call in calls if call.status == 429]
    assert len(limited) == 4
    for refusal in limited:
        inside = [
            call
            for call in calls
            if refusal.received_at + IN_FLIGHT < call.received_at < refusal.received_at + 1
        ]
        assert inside == [], "a worker called inside a Retry-After window"


def test_outage__two_workers_200_texts_nothing_fails_and_one_probe_at_a_time(
    worker, second_worker, emulator
):
    """11 to 40 s of outage at the test settings' timing (the circuit open 1 s, doubling up to
    4 s): 150 times the defaults' pace (30 s up to 600 s), so 30 to 100 minutes of a real one."""
    # Up to 16 calls are out at once (2 workers x 2 processes x CALLS_IN_FLIGHT 4): the
    # first wave fails whole, and at least 4 failures are left for the probes.
    emulator.script(*[Reply.server_error(502)] * 20)
    requests = django_textclass.classify([f"review {n}" for n in range(200)], model=MODEL)

    rows = finished(*requests, timeout=90)

    audit(rows)
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    assert ClassificationRequest.objects.filter(status=Status.FAILED).count() == 0
    calls = emulator.requests
    assert [call.status for call in calls].count(502) == 20
    # Calls already out when the third failure (CIRCUIT_FAILURES) opened the circuit were
    # received before it, or soon after on a loaded machine (they were sent before it); no
    # probe can arrive within the circuit's first open second. Every later call until the API
    # answered was a single probe, after the circuit's open time (1 s, then 2 and 4: a worker
    # that ignored the open circuit would call inside those windows).
    first_success = next(n for n, call in enumerate(calls) if call.status == 200)
    opened = calls[2].received_at
    probes = [call for call in calls[: first_success + 1] if call.received_at > opened + 0.9]
    assert len(probes) >= 3
    gaps = [later.received_at - earlier.received_at for earlier, later in pairwise(probes)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    assert BackendPace.objects.get(model_id="").circuit == "closed"


def test_poison_text_in_a_batch__fails_alone_and_the_nine_others_succeed(worker, emulator):
    emulator.poison("this text breaks the model")
    texts = [f"ordinary text {n}" for n in range(9)]
    texts.insert(4, "this text breaks the model")
    requests = django_textclass.classify(texts, model=MODEL)

    rows = finished(*requests, timeout=60)

    audit(rows)
    by_text = {row.text: row for row in rows}
    poison = by_text.pop("this text breaks the model")
    assert poison.status == Status.FAILED and poison.error_code == "retries_exhausted"
    assert "HTTP 500" in poison.error_message
    assert {row.status for row in by_text.values()} == {Status.SUCCEEDED}
    assert {row.attempts for row in by_text.values()} == {1}
    # MAX_BATCH_SIZE 8: a batch of 8 with the poison, bisected (twice whole, two calls per
    # halving), one clean batch of 2, and the poison's own 4 attempts alone.
    poisoned_calls = [call for call in emulator.requests if call.status == 500]
    assert len(emulator.requests) <= 2 + 2 * 3 + 1 + 4
    assert sum(len(call.inputs) == 1 for call in poisoned_calls) == 4


def test_duplicates_in_flight__each_unique_text_costs_one_call_across_workers(
    worker, second_worker, emulator
):
    """50 texts, 30 unique, one message each: two workers, two processes each."""
    emulator.latency = 0.2  # twins arrive while the first of them is being classified
    unique = [f"unique text {n}" for n in range(30)]
    # Twins side by side in the queue: different processes claim them at the same moment.
    texts = [text for n, text in enumerate(unique) for _ in range(2 if n < 20 else 1)]
    requests = [django_textclass.classify(text, model=MODEL) for text in texts]

    rows = finished(*requests, timeout=60)

    audit(rows)
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    seen = emulator.texts_seen()
    # Each unique text answered once, not 50 calls: twins claimed by one run share its call,
    # the others are answered from the first one's stored result.
    assert sorted(seen) == sorted(unique)
