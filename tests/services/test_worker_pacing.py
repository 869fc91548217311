"""The worker under the backend's pressure: rate limits and outages spend no attempt."""

import math
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from django_textclass import services
from django_textclass.backends import get_backend
from django_textclass.exceptions import PermanentBackendError, TransientBackendError
from django_textclass.models import BackendPace, ClassificationRequest, RequestEvent, Status
from django_textclass.services import calls, pacing
from tests.fakes import rank, scripted_settings, textclass_settings
from tests.services.helpers import MODEL, RowLock, finishes, fresh, make_due, pks, transient

pytestmark = pytest.mark.django_db


def rate_limit(seconds):
    return transient(
        "HTTP 429: rate limit reached", code="http_429", status_code=429, retry_after=seconds
    )


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
    backend.script = [
        transient("loading", code="http_503", status_code=503, retry_after=20.0, model_loading=True)
    ]
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


def test_endpoint_waking__waits_rate_limit_wait_without_a_hint_and_spends_nothing(backend):
    # A dedicated endpoint scaled to zero answers 503 with no estimate while a replica starts.
    waking = transient(
        "HTTP 503 (the endpoint is starting a replica)",
        code="endpoint_waking",
        status_code=503,
        model_loading=True,
    )
    backend.script = [waking, waking]
    request = services.submit("a good day")

    for _ in range(2):
        before = timezone.now()
        services.process([request.pk])
        row = fresh(request)
        assert row.status == Status.PENDING and row.attempts == 0
        assert row.error_code == "endpoint_waking"
        wait = (row.next_attempt_at - before).total_seconds()
        assert 0.9 <= wait <= 1.5  # RATE_LIMIT_WAIT of the test settings
        make_due(request)
    services.process([request.pk])

    assert fresh(request).status == Status.SUCCEEDED and fresh(request).attempts == 1
    assert [call.wait_for_model for call in backend.calls] == [False, False, False]
    assert BackendPace.objects.get(model_id=request.model_id).reason == "model_loading"
    assert not BackendPace.objects.filter(model_id="", failures__gt=0).exists()  # no outage


def test_503_without_a_hint__still_counts_toward_the_circuit(backend):
    backend.script = [transient("HTTP 503", code="http_503", status_code=503, model_loading=True)]
    request = services.submit("a good day")

    services.process([request.pk])

    assert fresh(request).attempts == 1  # the router's 503: the text's attempt is spent
    assert BackendPace.objects.get(model_id="").failures == 1


def _each_in_its_own_call(count):
    """Submit ``count`` texts, each processed before the next is stored (one call each)."""
    requests = []
    for n in range(count):
        requests.append(services.submit(f"text {n}"))
        services.process([requests[-1].pk])
    return requests


def test_outage__the_circuit_opens_and_the_rows_go_back_unspent(backend, sent):
    backend.script = [outage()] * 3  # CIRCUIT_FAILURES of the test settings

    requests = _each_in_its_own_call(3)

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
    requests = _each_in_its_own_call(3)

    make_due(*requests)
    services.process(pks(requests))  # the probe: the whole task's batch, and it succeeds

    assert statuses(requests) == [Status.SUCCEEDED] * 3
    assert len(backend.calls) == 4
    assert BackendPace.objects.get(model_id="").circuit == "closed"


def test_outage__hours_of_it_fail_nothing(backend):
    """Every call fails for a hundred probes in a row; then the API is back."""
    backend.script = [outage()] * 103
    requests = [*_each_in_its_own_call(3), services.submit("text 3")]

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


# --- a poison text in a batch, and batches the endpoint finds too large -----------------


def poison_answer(text, parameters):
    """The API fails any call that holds the poison, whatever else is in it."""
    if "poison" in text:
        raise TransientBackendError("HTTP 500 from http://api", code="http_500", status_code=500)
    return rank(text, parameters)


def run_until_done(requests, rounds=30):
    """The worker's body, again and again, as the wake-ups would; time passes in between."""
    for _ in range(rounds):
        if all(fresh(request).is_finished for request in requests):
            return
        make_due(*requests)
        services.process(pks(requests))
    pytest.fail("requests still unfinished")


@pytest.mark.parametrize("size", [2, 8, 10])
def test_poison__fails_alone_and_the_rest_succeed_in_about_log2_calls(backend, size):
    texts = [f"clean text {n}" for n in range(size - 1)]
    texts.insert(size // 3, "the poison text")
    with scripted_settings(
        {"ANSWER": "tests.services.test_worker_pacing.poison_answer", "MAX_BATCH_SIZE": 16}
    ):
        requests = services.submit_many([services.Item(text) for text in texts])
        run_until_done(requests)

    rows = {row.text: row for row in (fresh(request) for request in requests)}
    poison = rows.pop("the poison text")
    assert poison.status == Status.FAILED and poison.error_code == "retries_exhausted"
    assert poison.attempts == 4  # MAX_ATTEMPTS of the test settings, all of them alone
    assert {row.status for row in rows.values()} == {Status.SUCCEEDED}
    assert {row.attempts for row in rows.values()} == {1}  # the poison cost them nothing
    halvings = math.ceil(math.log2(size))
    # The batch twice, two calls per halving, then the poison's own attempts alone.
    assert len(backend.calls) <= 2 + 2 * halvings + 4
    assert BackendPace.objects.filter(circuit="open").count() == 0


def test_batch_too_large__halved_at_once_and_remembered_for_every_worker(backend):
    refused = PermanentBackendError(
        "HTTP 422: batch size 8 exceeds the maximum of 4", code="http_422", status_code=422
    )
    backend.script = [refused]
    with scripted_settings({"MAX_BATCH_SIZE": 8}):
        first = services.submit_many([services.Item(f"first {n}") for n in range(8)], MODEL)
        services.process(pks(first))
        second = services.submit_many([services.Item(f"second {n}") for n in range(8)], MODEL)
        services.process(pks(second))

    assert [len(call.texts) for call in backend.calls] == [8, 4, 4, 4, 4]
    assert set(statuses(first + second)) == {Status.SUCCEEDED}
    assert BackendPace.objects.get(model_id=MODEL).batch_limit == 4


def test_batch_too_large__the_limit_the_endpoint_names_is_learnt_not_a_half(backend):
    # TEI names its --max-client-batch-size; 3 of 8 is not what halving would find.
    refused = PermanentBackendError(
        "HTTP 413: batch size 8 > maximum allowed batch size 3 [Validation]",
        code="http_413",
        status_code=413,
    )
    backend.script = [refused]
    with scripted_settings({"MAX_BATCH_SIZE": 8}):
        rows = services.submit_many([services.Item(f"named {n}") for n in range(8)], MODEL)
        services.process(pks(rows))

    assert [len(call.texts) for call in backend.calls] == [8, 3, 3, 2]
    assert set(statuses(rows)) == {Status.SUCCEEDED}
    assert BackendPace.objects.get(model_id=MODEL).batch_limit == 3


def test_model_failed_424__the_batch_is_split_down_to_the_text(backend):
    # TEI's 424 "score is NaN" is one text's: its batch-mates must not fail with it.
    def nan_for_one(text, parameters):
        if "nan" in text:
            raise PermanentBackendError(
                "HTTP 424: score is NaN [Backend]", code="http_424", status_code=424
            )
        return rank(text, parameters)

    texts = ["fine 1", "fine 2", "gives nan", "fine 3"]
    with scripted_settings({"ANSWER": nan_for_one, "MAX_BATCH_SIZE": 4}):
        requests = services.submit_many([services.Item(text) for text in texts])
        services.process(pks(requests))

    rows = {fresh(request).text: fresh(request) for request in requests}
    assert rows["gives nan"].status == Status.FAILED
    assert rows["gives nan"].error_code == "http_424"
    assert {rows[text].status for text in texts if "nan" not in text} == {Status.SUCCEEDED}


def test_batch_too_large__a_chunk_cut_before_the_limit_was_learnt_goes_in_parts(backend):
    """A run cuts its chunks when it starts; another call may learn the limit meanwhile."""
    with scripted_settings({"MAX_BATCH_SIZE": 8}):
        rows = services.submit_many([services.Item(f"cut early {n}") for n in range(8)], MODEL)
        token, claimed = services.claim(pks(rows))
        pacing.learn_batch_limit("default", MODEL, 4)  # another worker's refusal
        call = calls.Call(token, get_backend("default"), MODEL, claimed[0].parameters, True)

        assert calls.send(call, [[row] for row in claimed]) is None

    assert [len(call.texts) for call in backend.calls] == [4, 4]
    assert set(statuses(rows)) == {Status.SUCCEEDED}


def test_one_text_too_long__bisected_it_fails_alone_and_no_limit_is_learnt(backend):
    def too_long(text, parameters):
        if "long" in text:
            raise PermanentBackendError(
                "HTTP 422: input is too long", code="http_422", status_code=422
            )
        return rank(text, parameters)

    texts = [f"short {n}" for n in range(7)] + ["far too long"]
    with scripted_settings({"ANSWER": too_long, "MAX_BATCH_SIZE": 8}):
        requests = services.submit_many([services.Item(text) for text in texts])
        services.process(pks(requests))

    assert [len(call.texts) for call in backend.calls] == [8, 4, 4, 2, 2, 1, 1]
    rows = [fresh(request) for request in requests]
    assert [row.status for row in rows] == [Status.SUCCEEDED] * 7 + [Status.FAILED]
    assert rows[-1].error_code == "http_422"
    assert not BackendPace.objects.filter(batch_limit__isnull=False).exists()


# --- leases: a heartbeat during long calls, and a broken database connection -------------


@pytest.mark.django_db(transaction=True)
def test_heartbeat__a_call_longer_than_the_lease_keeps_its_rows(backend):
    seen_expired = []

    def slow(text, parameters):
        time.sleep(1.0)  # more than three heartbeats of a 0.6 s lease
        seen_expired.append(ClassificationRequest.objects.lease_expired(timezone.now()).count())
        return rank(text, parameters)

    request = services.submit("a good day")
    with scripted_settings({"ANSWER": slow}, LEASE_SECONDS=0.6):
        services.process([request.pk])

    assert seen_expired == [0]  # the sweep would not have taken it mid-call
    assert fresh(request).status == Status.SUCCEEDED


class WatchedSlots(threading.BoundedSemaphore):
    """The run's call slots, telling when a call asks for one."""

    def __init__(self, value):
        super().__init__(value)
        self.asked = threading.Event()

    def acquire(self, blocking=True, timeout=None):
        if blocking:
            self.asked.set()
        return super().acquire(blocking, timeout)

    __enter__ = acquire


@pytest.mark.django_db(transaction=True)  # the call runs in a thread of its own
def test_call_waiting_for_a_slot__reads_the_pacing_state_again_before_it_goes(backend):
    """Found by the fault suite (a 429 storm on two workers): a call read the pacing state,
    then waited for a call slot while another call of the run met a 429, and went inside
    the wait it set."""
    request = services.submit("a good day")
    token, rows = services.claim([request.pk])
    slots = WatchedSlots(1)
    call = calls.Call(
        token, get_backend("default"), rows[0].model_id, rows[0].parameters, True, slots
    )
    slots.acquire(blocking=False)  # the run's other call is out
    outcome = {}

    def send():
        try:
            outcome["wait"] = calls.send(call, [[rows[0]]])
        finally:
            connection.close()

    thread = threading.Thread(target=send)
    thread.start()
    assert slots.asked.wait(5)
    pacing.rate_limited("default", 30)  # the other call met a 429
    slots.release()
    thread.join(10)

    assert backend.calls == []
    assert outcome["wait"].reason == "rate_limited"
    row = fresh(request)
    assert row.status == Status.PENDING and row.attempts == 0


@pytest.mark.django_db(transaction=True)
def test_heartbeat__skips_a_row_another_transaction_holds_instead_of_waiting(backend):
    """Found by the fault suite: the renewal (every row of the run, in the table's order) and
    a completion of the same run (its call's rows, in id order) each waited for the other."""
    if connection.vendor == "sqlite":
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    requests = services.submit(["one", "two"])
    token, _ = services.claim(pks(requests))
    leases = {row.pk: row.lease_expires_at for row in map(fresh, requests)}
    completing, other = requests

    with RowLock([completing.pk]):  # a call thread of the run is storing its answer
        done, _ = finishes(calls._renew_lease, token)

    assert done, "the renewal waited for a row another transaction held"
    assert fresh(other).lease_expires_at > leases[other.pk]
    assert fresh(completing).lease_expires_at == leases[completing.pk]  # the next one will


@pytest.mark.django_db(transaction=True)  # the run closes its broken connection
def test_database_error_mid_run__the_rows_go_back_at_once_unspent(backend, sent, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(calls, "complete", broken)
    requests = services.submit_many([services.Item("one"), services.Item("two")])

    assert services.process(pks(requests)) == 2

    rows = [fresh(request) for request in requests]
    assert {row.status for row in rows} == {Status.PENDING}
    assert {row.attempts for row in rows} == {0}
    assert {row.claim_token for row in rows} == {None}
    assert sorted(sent.calls[-1][0]) == sorted(pks(requests))


def test_database_error_reading_the_pacing_state__raised_to_the_run_not_spent(backend, monkeypatch):
    """Not a backend error: the run gives its rows back unspent (the test above)."""
    rows = services.submit_many([services.Item("one"), services.Item("two")])
    token, claimed = services.claim(pks(rows))

    def broken(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(pacing, "gate", broken)
    call = calls.Call(token, get_backend("default"), MODEL, claimed[0].parameters, True)

    with pytest.raises(OperationalError):
        calls.send(call, [[row] for row in claimed])

    assert backend.calls == []
    assert {(fresh(row).status, fresh(row).error_code) for row in rows} == {(Status.RUNNING, "")}


def test_own_rate_limit__calls_past_it_wait_for_the_next_window(backend, sent):
    requests = services.submit_many([services.Item(f"text {n}") for n in range(6)])
    config = {"MAX_BATCH_SIZE": 2}

    with scripted_settings(config):
        backends = {
            alias: {**spec, "RATE_LIMIT": "2/hour"}
            for alias, spec in settings.TEXTCLASS["BACKENDS"].items()
        }
        with textclass_settings(BACKENDS=backends):
            services.process(pks(requests))

    assert len(backend.calls) == 2
    rows = [fresh(request) for request in requests]
    assert [row.status for row in rows].count(Status.SUCCEEDED) == 4
    waiting = [row for row in rows if row.status == Status.PENDING]
    assert len(waiting) == 2 and {row.attempts for row in waiting} == {0}
    assert waiting[0].next_attempt_at == BackendPace.objects.get(
        model_id=""
    ).window_start + timedelta(hours=1)


# --- what a request went through is on the request -----------------------------------------


def test_events__each_wait_and_retry_with_its_reason(backend):
    backend.script = [rate_limit(4), transient("HTTP 500", code="http_500"), None]
    request = services.submit("a good day")

    for _ in range(3):
        services.process([request.pk])
        make_due(request)

    events = list(RequestEvent.objects.filter(request_id=request.pk).order_by("at", "pk"))
    assert [(e.kind, e.reason, e.attempts) for e in events] == [
        ("wait", "rate_limited", 0),
        ("retry", "http_500", 1),
    ]
    assert events[0].wait_seconds == pytest.approx(4, abs=0.1)
    assert "HTTP 429" in events[0].message and "HTTP 500" in events[1].message
    assert fresh(request).status == Status.SUCCEEDED and fresh(request).attempts == 2
