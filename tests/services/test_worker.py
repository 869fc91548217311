"""The worker's side: claiming rows, calling the backend, storing results, once.

No broker and no worker: ``dispatch.send`` is replaced by a recorder (the one
publishing seam, ``sent``) and ``process()`` is called directly, as the task would.
"""

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_textclass import services
from django_textclass.exceptions import (
    PermanentBackendError,
    TransientBackendError,
)
from django_textclass.models import ClassificationRequest, ClassificationScore, Status
from django_textclass.services import worker
from django_textclass.types import LabelScore, Parameters, Ranking
from tests.fakes import (
    SCRIPTED,
    SCRIPTED_OPTIONS,
    rank,
    scripted_settings,
)
from tests.helpers import wait_for
from tests.services.helpers import (
    MODEL,
    ProcessThread,
    fresh,
    pks,
    scores_of,
    transient,
)

pytestmark = pytest.mark.django_db


# --- claim -----------------------------------------------------------------------------


def test_claim__takes_only_pending_due_rows_among_ids():
    first, second, elsewhere = services.submit(["one", "two", "three"])
    now = timezone.now()

    token, rows = services.claim([first.pk, second.pk], now=now)

    assert pks(rows) == [first.pk, second.pk]
    for row in (fresh(first), fresh(second)):
        assert row.status == Status.RUNNING
        assert row.claim_token == token
        assert row.attempts == 1
        assert row.started_at == now
        assert row.lease_expires_at == now + timedelta(seconds=60)
    assert fresh(elsewhere).status == Status.PENDING
    assert fresh(elsewhere).claim_token is None


def test_claim__increments_attempts():
    request = services.submit("one")
    ClassificationRequest.objects.filter(pk=request.pk).update(attempts=2)

    _, rows = services.claim([request.pk])

    assert rows[0].attempts == 3
    assert fresh(request).attempts == 3


def test_claim__second_claim_gets_nothing():
    request = services.submit("one")
    token, _ = services.claim([request.pk])

    second_token, rows = services.claim([request.pk])

    assert rows == []
    assert second_token != token
    assert fresh(request).claim_token == token


def test_claim__skips_rows_whose_next_attempt_is_in_the_future():
    request = services.submit("one")
    now = timezone.now()
    ClassificationRequest.objects.filter(pk=request.pk).update(
        next_attempt_at=now + timedelta(seconds=10)
    )

    _, rows = services.claim([request.pk], now=now)

    assert rows == []
    assert fresh(request).status == Status.PENDING
    assert fresh(request).attempts == 0


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.SUCCEEDED, Status.FAILED])
def test_claim__skips_finished_rows(status):
    request = services.submit("one")
    ClassificationRequest.objects.filter(pk=request.pk).update(status=status)

    _, rows = services.claim([request.pk])

    assert rows == []
    assert fresh(request).status == status
    assert fresh(request).attempts == 0


# --- process ---------------------------------------------------------------------------


def test_process__stores_the_ranking_and_timings(monkeypatch):
    ticks = iter([100.0, 100.25])
    monkeypatch.setattr(services.calls, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    request = services.submit("a good day")
    expected = rank("a good day")

    assert services.process([request.pk]) == 1

    row = fresh(request)
    assert row.status == Status.SUCCEEDED
    assert row.top_label == "POSITIVE"
    assert row.top_score == expected.top.score
    assert row.backend_ms == 250
    assert row.finished_at is not None and row.finished_at >= row.started_at
    assert row.attempts == 1
    assert row.claim_token is None and row.lease_expires_at is None
    assert row.next_attempt_at is None
    assert row.reused_from is None
    assert row.error_code == ""


@pytest.mark.parametrize(
    ("step", "status"),
    [
        (None, Status.SUCCEEDED),
        (TransientBackendError("busy", status_code=503), Status.PENDING),
        (PermanentBackendError("no such model", status_code=404), Status.FAILED),
    ],
    ids=["succeeded", "rescheduled", "failed"],
)
def test_process__writes_to_todays_rows_ask_the_rollup_nothing(backend, step, status):
    backend.script = [step]
    requests = services.submit_many([services.Item(f"text {i}") for i in range(5)])

    with CaptureQueriesContext(connection) as queries:
        services.process(pks(requests))

    assert {fresh(request).status for request in requests} == {status}
    # The roll-up's question is a SELECT DISTINCT of days; the worker's writes skip it.
    assert [query["sql"] for query in queries if "DISTINCT" in query["sql"]] == []


def test_process__stores_scores_in_rank_order(backend):
    # The backend's answer is taken as given: rank 0 is its first item.
    backend.script = [
        [Ranking((LabelScore("joy", 0.7), LabelScore("anger", 0.2), LabelScore("fear", 0.1)))]
    ]
    request = services.submit("a good day")

    services.process([request.pk])

    assert scores_of(request) == [(0, "joy", 0.7), (1, "anger", 0.2), (2, "fear", 0.1)]
    assert fresh(request).labels == [
        {"label": "joy", "score": 0.7},
        {"label": "anger", "score": 0.2},
        {"label": "fear", "score": 0.1},
    ]


def test_process__sends_text_parameters_and_model_to_the_backend(backend):
    request = services.submit("a good day", MODEL, function_to_apply="softmax", top_k=1)

    services.process([request.pk])

    (call,) = backend.calls
    assert call.texts == ["a good day"]
    assert call.parameters == Parameters("softmax", 1)
    assert call.model_id == MODEL
    assert call.use_cache is True
    assert call.wait_for_model is False
    assert fresh(request).labels == [{"label": "POSITIVE", "score": rank("a good day").top.score}]


def test_process__groups_by_model(backend):
    one = services.submit("a good day", "acme/one")
    two = services.submit("a bad day", "acme/two")

    assert services.process([one.pk, two.pk]) == 2

    assert sorted((call.model_id, tuple(call.texts)) for call in backend.calls) == [
        ("acme/one", ("a good day",)),
        ("acme/two", ("a bad day",)),
    ]
    assert fresh(one).status == fresh(two).status == Status.SUCCEEDED


def test_process__groups_by_parameters(backend):
    plain = services.submit("a good day", MODEL)
    sigmoid = services.submit("a bad day", MODEL, function_to_apply="sigmoid")
    top_one = services.submit("a fine day", MODEL, top_k=1)

    services.process(pks([plain, sigmoid, top_one]))

    assert sorted((str(call.parameters), call.texts) for call in backend.calls) == sorted(
        [
            (str(Parameters()), ["a good day"]),
            (str(Parameters("sigmoid")), ["a bad day"]),
            (str(Parameters(top_k=1)), ["a fine day"]),
        ]
    )


def test_process__groups_by_backend_alias(backend):
    default = services.submit("a good day")
    other = services.submit("a bad day", backend="other")

    services.process([default.pk, other.pk])

    assert sorted((call.alias, call.texts[0]) for call in backend.calls) == [
        ("default", "a good day"),
        ("other", "a bad day"),
    ]


def test_process__sends_a_duplicate_text_once(backend):
    first, second, other = services.submit(["a good day", "a good day", "a bad day"])

    assert services.process(pks([first, second, other])) == 3

    (call,) = backend.calls
    assert call.texts == ["a good day", "a bad day"]
    first, second = fresh(first), fresh(second)
    assert first.status == second.status == Status.SUCCEEDED
    assert first.labels == second.labels == rank("a good day").as_list()
    assert len(scores_of(first)) == len(scores_of(second)) == 2


def test_process__respects_the_backend_batch_size(backend):
    requests = services.submit([f"text {n}" for n in range(5)])

    with scripted_settings({"MAX_BATCH_SIZE": 2}):
        services.process(pks(requests))

    assert [call.texts for call in backend.calls] == [
        ["text 0", "text 1"],
        ["text 2", "text 3"],
        ["text 4"],
    ]
    assert {fresh(request).status for request in requests} == {Status.SUCCEEDED}


def test_process__one_text_per_call_without_batch_support(backend):
    requests = services.submit(["one", "two", "three"])

    with scripted_settings({"BATCH": False}):
        services.process(pks(requests))

    assert [call.texts for call in backend.calls] == [["one"], ["two"], ["three"]]


def test_process__returns_the_number_claimed():
    requests = services.submit(["one", "two"])
    ClassificationRequest.objects.filter(pk=requests[1].pk).update(status=Status.CANCELLED)

    assert services.process(pks(requests)) == 1


def test_process__early_wakeup_is_sent_again_for_the_due_time(sent):
    request = services.submit("one")
    ClassificationRequest.objects.filter(pk=request.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=5)
    )

    assert services.process([request.pk]) == 0

    ((ids, countdown),) = sent.calls
    assert ids == [request.pk]
    assert 4 < countdown <= 5
    assert fresh(request).status == Status.PENDING


# --- idempotency and claim tokens ------------------------------------------------------


def test_process__twice_calls_the_backend_once_and_stores_one_set_of_scores(backend):
    request = services.submit("a good day")

    assert services.process([request.pk]) == 1
    assert services.process([request.pk]) == 0

    assert len(backend.calls) == 1
    assert len(scores_of(request)) == 2
    assert ClassificationScore.objects.count() == 2
    assert fresh(request).attempts == 1


def test_complete__a_second_set_of_scores_is_refused_never_appended():
    # Scores are written only by the one transition to succeeded; a row that somehow has
    # some already makes the completion fail (the unique rank), it never mixes two answers.
    request = services.submit("a good day")
    token, (row,) = services.claim([request.pk])
    ClassificationScore.objects.create(request_id=request.pk, rank=0, label="stray", score=0.5)

    with pytest.raises(IntegrityError), transaction.atomic():
        services.complete(token, [(row, rank("a good day"))])

    assert [label for _, label, _ in scores_of(request)] == ["stray"]
    assert fresh(request).status == Status.RUNNING


def _reclaimed_after_lost_lease(request):
    """Claim, lose the lease to the sweep, be claimed by another run; return both tokens."""
    stale_token, (stale_row,) = services.claim([request.pk])
    ClassificationRequest.objects.filter(pk=request.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert services.sweep()["requeued"] == 1
    token, (row,) = services.claim([request.pk])
    return stale_token, stale_row, token, row


def test_complete__stale_token_writes_nothing():
    request = services.submit("a good day")
    stale_token, stale_row, token, row = _reclaimed_after_lost_lease(request)

    assert services.complete(stale_token, [(stale_row, rank("a good day"))]) == 0

    current = fresh(request)
    assert current.status == Status.RUNNING
    assert current.claim_token == token
    assert current.top_label == ""
    assert scores_of(request) == []
    # The current owner still can.
    assert services.complete(token, [(row, rank("a good day"))]) == 1
    assert fresh(request).status == Status.SUCCEEDED
    assert len(scores_of(request)) == 2


def test_fail__stale_token_writes_nothing():
    request = services.submit("a good day")
    stale_token, stale_row, token, row = _reclaimed_after_lost_lease(request)

    assert services.fail(stale_token, [stale_row], code="http_400", message="late") == 0

    current = fresh(request)
    assert current.status == Status.RUNNING
    assert current.claim_token == token
    assert current.error_code != "http_400"
    assert services.fail(token, [row], code="http_400", message="now") == 1
    assert fresh(request).status == Status.FAILED


def test_reschedule__stale_token_writes_nothing(sent):
    request = services.submit("a good day")
    stale_token, stale_row, token, _ = _reclaimed_after_lost_lease(request)
    sent.calls.clear()

    services.reschedule(stale_token, [stale_row], transient())

    current = fresh(request)
    assert current.status == Status.RUNNING
    assert current.claim_token == token
    assert sent.calls == []


# --- a run fills its calls with the waiting work of its kind -----------------------------


def test_stream__one_message_takes_the_waiting_rows_of_its_model_in_full_calls(backend):
    mine = [services.submit(f"text {n}") for n in range(20)]
    other = services.submit("a text for another model", "acme/other-model")

    claimed = services.process([mine[0].pk])

    assert claimed == 20  # its own row, then the 19 others of the same model and parameters
    assert {fresh(request).status for request in mine} == {Status.SUCCEEDED}
    assert fresh(other).status == Status.PENDING  # another model: its own message's work
    assert [len(call.texts) for call in backend.calls] == [8, 8, 4]  # MAX_BATCH_SIZE 8


def test_stream__a_text_met_again_later_in_the_run_is_answered_by_its_first_call(backend):
    first = services.submit("the same words")
    others = [services.submit(f"text {n}") for n in range(9)]
    again = services.submit("the same words")  # past the first call: a later top-up's

    services.process([first.pk])

    assert sum(call.texts.count("the same words") for call in backend.calls) == 1
    row = fresh(again)
    assert row.status == Status.SUCCEEDED and row.reused_from_id == first.pk
    assert {fresh(request).status for request in others} == {Status.SUCCEEDED}


#: Held by ``gated_rank``: a call with the text "hold" waits until the test sets it.
GATE = threading.Event()


def gated_rank(text, parameters=None):
    """:func:`tests.fakes.rank`, but "hold" waits (at most 30 s) until ``GATE`` is set."""
    if text == "hold":
        GATE.wait(30)
    return rank(text, parameters)


def gated_refusal(text, parameters=None):
    """:func:`gated_rank`, but "hold", once ``GATE`` is set, is refused with a 429."""
    if text == "hold":
        GATE.wait(30)
        raise TransientBackendError("HTTP 429", status_code=429, retry_after=30)
    return rank(text, parameters)


def gated_backend(settings, calls_in_flight, answer="gated_rank"):
    """Every call by the scripted backend, answering by :func:`gated_rank`, from threads.

    Skips on SQLite, where a run sends its calls one at a time in its own thread.
    """
    if connection.vendor == "sqlite":
        pytest.skip("on SQLite a run sends its calls one at a time")
    alias = {
        "BACKEND": SCRIPTED,
        "CALLS_IN_FLIGHT": calls_in_flight,
        "OPTIONS": {**SCRIPTED_OPTIONS, "ANSWER": f"tests.services.test_worker.{answer}"},
    }
    settings.TEXTCLASS = {**settings.TEXTCLASS, "BACKENDS": {"default": alias}}
    GATE.clear()


@pytest.mark.django_db(transaction=True)
def test_stream__a_request_stored_while_a_call_is_out_goes_out_in_the_same_run(backend, settings):
    gated_backend(settings, calls_in_flight=2)
    held = services.submit("hold")
    run = ProcessThread([held.pk])
    run.start()
    try:
        wait_for(lambda: len(backend.calls) == 1, timeout=10, message="the first call")
        later = services.submit("stored while the first call is out")
        # The run looks for new work while its call slot is free: a second call goes out
        # while the first is still held (before, it waited for the first call to end).
        wait_for(lambda: len(backend.calls) == 2, timeout=10, message="the second call")
        assert backend.calls[1].texts == ["stored while the first call is out"]
    finally:
        GATE.set()
        run.join(30)
    assert run.claimed == 2
    assert {fresh(held).status, fresh(later).status} == {Status.SUCCEEDED}


FIRST_CALL = threading.Event()


def first_call_marked(text, parameters=None):
    """:func:`tests.fakes.rank`, setting ``FIRST_CALL`` as the first call arrives."""
    FIRST_CALL.set()
    return rank(text, parameters)


@pytest.mark.django_db(transaction=True)
def test_stream__the_first_call_goes_before_the_run_gathers_more_work(
    backend, settings, monkeypatch
):
    """A run's first batch is full: it goes at once, and the work that fills the other
    call slots is claimed while it is out (a burst's first answer waited for that)."""
    gated_backend(settings, calls_in_flight=4, answer="first_call_marked")
    FIRST_CALL.clear()
    message = [services.submit(f"in the message {n}") for n in range(8)]  # one full batch
    waiting = [services.submit(f"waiting {n}") for n in range(40)]
    seen_at_first_claim = []

    def claim_like(*args, **kwargs):
        if not seen_at_first_claim:  # before, the run claimed more before any call went
            seen_at_first_claim.append(FIRST_CALL.wait(5))
        return real_claim_like(*args, **kwargs)

    real_claim_like = worker.claim_like
    monkeypatch.setattr(worker, "claim_like", claim_like)
    services.process(pks(message))

    assert seen_at_first_claim == [True]
    assert backend.calls[0].texts == [row.text for row in message]
    assert {fresh(row).status for row in [*message, *waiting]} == {Status.SUCCEEDED}


def test_process__a_message_whose_rows_were_taken_serves_the_longest_waiting_work(backend):
    taken = services.submit("taken by another run")
    services.claim([taken.pk])
    waiting = services.submit("waiting for a run", "acme/other-model")

    claimed = services.process([taken.pk])

    assert claimed == 1
    assert fresh(waiting).status == Status.SUCCEEDED
    assert fresh(taken).status == Status.RUNNING  # still the other run's


@pytest.mark.django_db(transaction=True)
def test_stream__while_every_slot_is_busy_a_part_filled_batch_waits_to_be_filled(backend, settings):
    gated_backend(settings, calls_in_flight=1)
    held = services.submit("hold")
    run = ProcessThread([held.pk])
    run.start()
    later = []
    try:
        wait_for(lambda: len(backend.calls) == 1, timeout=10, message="the first call")
        # One by one, each taken by the run before the next is stored: kept in the run, a
        # part-filled batch leaves room for the next (sent at once, it would fill the run's
        # calls under way, and the run would take nothing more until a call ended).
        for n in range(3):
            later.append(services.submit(f"stored while the only slot is busy {n}"))
            wait_for(
                lambda: fresh(later[-1]).status == Status.RUNNING,
                timeout=10,
                message="the run to take it",
            )
    finally:
        GATE.set()
        run.join(30)
    assert [call.texts for call in backend.calls[1:]] == [[row.text for row in later]]
    assert {fresh(row).status for row in [held, *later]} == {Status.SUCCEEDED}


@pytest.mark.django_db(transaction=True)
def test_stream__a_wait_hands_back_the_part_filled_batch_kept_while_busy(backend, settings):
    gated_backend(settings, calls_in_flight=1, answer="gated_refusal")
    held = services.submit("hold")
    run = ProcessThread([held.pk])
    run.start()
    try:
        wait_for(lambda: len(backend.calls) == 1, timeout=10, message="the first call")
        kept = services.submit("kept back while the only slot is busy")
        wait_for(
            lambda: fresh(kept).status == Status.RUNNING, timeout=10, message="the run to take it"
        )
    finally:
        GATE.set()  # the held call is refused with a 429: nothing more goes out
        run.join(30)
    assert len(backend.calls) == 1
    # Both back in the queue for the rate limit's wait, unspent, and no longer the run's.
    for row in (fresh(held), fresh(kept)):
        assert (row.status, row.attempts, row.claim_token) == (Status.PENDING, 0, None)
        assert row.next_attempt_at > timezone.now() + timedelta(seconds=4)  # RETRY_HINT_MAX 5
