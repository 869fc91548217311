"""The worker under the backend's pressure: rate limits and outages spend no attempt."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django_textclass import services
from django_textclass.models import BackendPace, ClassificationRequest, Status
from django_textclass.services import pacing
from tests.fakes import scripted_settings, textclass_settings
from tests.services.helpers import fresh, make_due, pks, transient

pytestmark = pytest.mark.django_db


def rate_limit(seconds):
    return transient("HTTP 429: rate limit reached", code="http_429", status_code=429,
                     retry_after=seconds)


def outage():
    return transient("cannot connect to api: ConnectionError", code="connection_error")


def statuses(requests):
    return [fresh(request).status for request in requests]


def test_429__the_whole_task_goes_back_unspent_until_the_hint(backend, sent):
    backend.script = [rate_limit(4)]  # under RETRY_HINT_MAX (5 s in the test settings)
    requests = services.submit_many([services.Item(f"text {n}") for n in range(5)])

    with scripted_settings({"MAX_BATCH_SIZE": 2}):
        services.process(pks(requests))

    assert len(backend.calls) == 1  # the other batches of the task were not sent
    rows = [fresh(request) for request in requests]
    assert {row.status for row in rows} == {Status.PENDING}
    assert {row.attempts for row in rows} == {0}
    not_before = BackendPace.objects.get(model_id="").not_before
    assert {row.next_attempt_at for row in rows} == {not_before}
    assert 3 <= (not_before - timezone.now()).total_seconds() <= 4
    assert sorted(sent.ids) == sorted(pks(requests))
    assert {round(countdown) for _, countdown in sent.calls} == {4}


def test_429__rows_claimed_during_the_wait_go_back_without_a_call(backend, sent):
    pacing.rate_limited("default", 30)
    requests = services.submit_many([services.Item("a"), services.Item("b")])

    assert services.process(pks(requests)) == 2

    assert backend.calls == []
    assert statuses(requests) == [Status.PENDING, Status.PENDING]
    assert {fresh(request).attempts for request in requests} == {0}


def test_429__never_fails_a_text_however_long_it_lasts(backend):
    """Twenty windows of rate limiting, past every attempt budget and the deadline."""
    backend.script = [rate_limit(5)] * 20
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timedelta(days=3)  # long past RETRY_DEADLINE
    )

    for _ in range(20):
        services.process([request.pk])
        assert fresh(request).status == Status.PENDING
        make_due(request)
    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.SUCCEEDED and row.attempts == 1
    assert len(backend.calls) == 21


def test_503_loading__waits_for_that_model_and_sends_x_wait_for_model(backend):
    backend.script = [transient("loading", code="http_503", status_code=503, retry_after=20.0,
                                model_loading=True)]
    loading = services.submit("a good day", "acme/big")

    services.process([loading.pk])
    other = services.submit("a good day", "acme/small")
    services.process([loading.pk, other.pk])

    assert fresh(loading).status == Status.PENDING and fresh(loading).attempts == 0
    assert fresh(other).status == Status.SUCCEEDED  # another model of the backend goes on
    make_due(loading)
    services.process([loading.pk])
    assert fresh(loading).status == Status.SUCCEEDED
    assert [call.wait_for_model for call in backend.calls] == [False, False, True]


def test_outage__the_circuit_opens_and_the_rows_go_back_unspent(backend, sent):
    backend.script = [outage()] * 3  # CIRCUIT_FAILURES of the test settings
    requests = services.submit_many([services.Item(f"text {n}") for n in range(3)])

    for request in requests:
        services.process([request.pk])

    rows = [fresh(request) for request in requests]
    assert [row.status for row in rows] == [Status.PENDING] * 3
    # The first two failures were each text's own until the third opened the circuit.
    assert [row.attempts for row in rows] == [1, 1, 0]
    assert [row.error_code for row in rows] == ["connection_error"] * 3
    pace = BackendPace.objects.get(model_id="")
    assert pace.circuit == "open" and rows[2].next_attempt_at == pace.not_before

    make_due(*requests[:2])  # their own backoff is over, but the circuit is still open
    BackendPace.objects.update(not_before=timezone.now() + timedelta(seconds=30))
    services.process(pks(requests[:2]))
    assert len(backend.calls) == 3  # no call while it is open


def test_outage__one_probe_then_everything_flows(backend):
    backend.script = [outage()] * 3
    requests = services.submit_many([services.Item(f"text {n}") for n in range(3)])
    for request in requests:
        services.process([request.pk])

    make_due(*requests)
    services.process(pks(requests))  # the probe: the whole task's batch, and it succeeds

    assert statuses(requests) == [Status.SUCCEEDED] * 3
    assert len(backend.calls) == 4
    assert BackendPace.objects.get(model_id="").circuit == "closed"


def test_outage__hours_of_it_fail_nothing(backend):
    """Every call fails for a hundred probes in a row; then the API is back."""
    backend.script = [outage()] * 103
    requests = services.submit_many([services.Item(f"text {n}") for n in range(4)])
    for request in requests[:3]:
        services.process([request.pk])

    for _ in range(100):
        make_due(*requests)
        services.process(pks(requests))
        assert set(statuses(requests)) == {Status.PENDING}
    make_due(*requests)
    services.process(pks(requests))

    rows = [fresh(request) for request in requests]
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    assert max(row.attempts for row in rows) <= 2  # CIRCUIT_FAILURES - 1, plus the success
    assert len(backend.calls) == 104


def test_deadline__a_text_still_failing_after_retry_deadline_fails(backend):
    backend.script = [transient("HTTP 500", code="http_500")]
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED and row.error_code == "deadline_exceeded"
    assert "86400 s after it was submitted" in row.error_message
    assert "HTTP 500" in row.error_message


def test_deadline__none_keeps_trying(backend):
    backend.script = [transient("HTTP 500", code="http_500")]
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )

    with textclass_settings(RETRY_DEADLINE=None):
        services.process([request.pk])

    assert fresh(request).status == Status.PENDING
