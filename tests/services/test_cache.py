"""The stored-result cache: which earlier answers a new request may reuse.

No broker and no worker: ``dispatch.send`` is replaced by a recorder (the one
publishing seam, ``sent``) and ``process()`` is called directly, as the task would.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_textclass import services
from django_textclass.models import ClassificationRequest, RequestEvent, Status
from django_textclass.services import work
from django_textclass.types import Parameters
from tests.fakes import rank, textclass_settings
from tests.helpers import wait_for
from tests.services.helpers import MODEL, ProcessThread, fresh, make_due

pytestmark = pytest.mark.django_db


# --- the stored-result cache -----------------------------------------------------------


def test_process__identical_text_is_answered_from_the_stored_result(backend):
    first = services.submit("a good day", MODEL)
    services.process([first.pk])
    second = services.submit("a good day", MODEL)

    services.process([second.pk])

    assert len(backend.calls) == 1
    row = fresh(second)
    assert row.status == Status.SUCCEEDED
    assert row.reused_from_id == first.pk
    assert row.labels == fresh(first).labels
    assert row.top_label == fresh(first).top_label
    assert row.backend_ms is None


def test_process__only_uncached_texts_go_to_the_backend(backend):
    first = services.submit("a good day", MODEL)
    services.process([first.pk])
    cached, new = services.submit(["a good day", "a bad day"], MODEL)

    services.process([cached.pk, new.pk])

    assert [call.texts for call in backend.calls] == [["a good day"], ["a bad day"]]
    assert fresh(cached).reused_from_id == first.pk
    assert fresh(new).reused_from_id is None
    assert fresh(new).status == Status.SUCCEEDED


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"model": "acme/other"}, id="other-model"),
        pytest.param({"function_to_apply": "sigmoid"}, id="other-function"),
        pytest.param({"top_k": 1}, id="other-top-k"),
    ],
)
def test_process__different_model_or_parameters_are_not_reused(backend, changes):
    first = services.submit("a good day", MODEL)
    services.process([first.pk])
    second = services.submit("a good day", **{"model": MODEL, **changes})

    services.process([second.pk])

    assert len(backend.calls) == 2
    assert fresh(second).reused_from_id is None
    assert fresh(second).status == Status.SUCCEEDED


def test_process__a_result_from_another_backend_is_not_reused(backend):
    offline = services.submit("a good day", MODEL, backend="other")
    services.process([offline.pk])
    request = services.submit("a good day", MODEL)

    services.process([request.pk])

    assert [call.alias for call in backend.calls] == ["other", "default"]
    assert fresh(request).reused_from_id is None


def test_process__use_cache_false_bypasses_stored_results_and_api_cache(backend):
    first = services.submit("a good day", MODEL)
    services.process([first.pk])
    second = services.submit("a good day", MODEL, use_cache=False)

    services.process([second.pk])

    assert [call.use_cache for call in backend.calls] == [True, False]
    assert fresh(second).reused_from_id is None
    assert fresh(second).status == Status.SUCCEEDED


def test_process__cache_ttl_zero_disables_reuse(backend):
    with textclass_settings(CACHE_TTL=0):
        first = services.submit("a good day", MODEL)
        services.process([first.pk])
        second = services.submit("a good day", MODEL)
        services.process([second.pk])

    assert len(backend.calls) == 2
    assert fresh(second).reused_from_id is None


def test_process__expired_result_is_not_reused(backend):
    with textclass_settings(CACHE_TTL=60):
        first = services.submit("a good day", MODEL)
        services.process([first.pk])
        ClassificationRequest.objects.filter(pk=first.pk).update(
            finished_at=timezone.now() - timedelta(seconds=61)
        )
        second = services.submit("a good day", MODEL)
        services.process([second.pk])

    assert len(backend.calls) == 2
    assert fresh(second).reused_from_id is None


def test_process__result_within_ttl_is_reused(backend):
    with textclass_settings(CACHE_TTL=60):
        first = services.submit("a good day", MODEL)
        services.process([first.pk])
        ClassificationRequest.objects.filter(pk=first.pk).update(
            finished_at=timezone.now() - timedelta(seconds=50)
        )
        second = services.submit("a good day", MODEL)
        services.process([second.pk])

    assert len(backend.calls) == 1
    assert fresh(second).reused_from_id == first.pk


def test_process__cache_ttl_none_keeps_results_forever(backend):
    with textclass_settings(CACHE_TTL=None):
        first = services.submit("a good day", MODEL)
        services.process([first.pk])
        ClassificationRequest.objects.filter(pk=first.pk).update(
            finished_at=timezone.now() - timedelta(days=3650)
        )
        second = services.submit("a good day", MODEL)
        services.process([second.pk])

    assert len(backend.calls) == 1
    assert fresh(second).reused_from_id == first.pk


# --- twins in flight ---------------------------------------------------------------------


def test_twin_in_flight__waits_for_it_then_takes_its_result(backend, sent):
    leader = services.submit("a good day", MODEL)
    token, _ = services.claim([leader.pk])  # another run is calling the API for it now
    twin = services.submit("a good day", MODEL)

    services.process([twin.pk])

    assert backend.calls == []
    row = fresh(twin)
    assert row.status == Status.PENDING and row.attempts == 0
    assert 0.5 <= (row.next_attempt_at - timezone.now()).total_seconds() <= 1.5
    assert sent.calls[-1] == ([twin.pk], pytest.approx(1.0, abs=0.5))

    services.complete(token, [(fresh(leader), rank("a good day"))])
    make_due(twin)
    services.process([twin.pk])

    row = fresh(twin)
    assert row.status == Status.SUCCEEDED and row.reused_from_id == leader.pk
    assert backend.calls == []  # one text, the leader's one call (made by "another run")


def test_twin_in_flight__of_two_runs_claiming_at_once_the_earlier_claim_sends(backend):
    first, second = services.submit("a good day", MODEL), services.submit("a good day", MODEL)
    token_one, claimed_one = services.claim([first.pk])
    token_two, claimed_two = services.claim([second.pk])

    # Whichever looks first, both runs order the two claims alike: the earlier one sends.
    goes_two, follows_two = work.twins_in_flight(
        token_two, "default", MODEL, Parameters(), claimed_two
    )
    goes_one, follows_one = work.twins_in_flight(
        token_one, "default", MODEL, Parameters(), claimed_one
    )

    assert [row.pk for row in goes_one] == [first.pk] and follows_one == []
    assert goes_two == [] and [row.pk for row in follows_two] == [second.pk]


@pytest.mark.django_db(transaction=True)
def test_twin_in_flight__answered_in_the_same_run_once_the_earlier_call_is_stored(backend):
    if connection.vendor == "sqlite":
        pytest.skip("needs a second connection writing while the run waits")
    leader = services.submit("a good day", MODEL)
    token, _ = services.claim([leader.pk])  # another run is calling the API for it now
    twin = services.submit("a good day", MODEL)

    thread = ProcessThread([twin.pk])
    thread.start()
    wait_for(lambda: fresh(twin).status == Status.RUNNING, timeout=10, message="the claim")
    services.complete(token, [(fresh(leader), rank("a good day"))])
    thread.join(30)

    row = fresh(twin)
    assert row.status == Status.SUCCEEDED and row.reused_from_id == leader.pk
    assert backend.calls == []
    assert not RequestEvent.objects.filter(request=twin).exists()  # no wait, no hand-back


def test_twin_in_flight__stored_between_the_runs_two_looks_it_is_not_sent_again(
    backend, monkeypatch
):
    """The other run stores its answer after this run's first look and before its second.

    Found by the fault suite (two workers on the same texts, on a loaded machine): the run
    looked in the cache first (not stored yet), then for twins in flight (not running any
    more), and sent the text a second time.
    """
    leader = services.submit("a good day", MODEL)
    token, _ = services.claim([leader.pk])  # another run is calling the API for it now
    twin = services.submit("a good day", MODEL)
    looks = []

    def looking(name):
        original = getattr(work, name)

        def look(*args, **kwargs):
            result = original(*args, **kwargs)
            if not looks:  # the other run's answer lands right after the first look
                services.complete(token, [(fresh(leader), rank("a good day"))])
            looks.append(name)
            return result

        monkeypatch.setattr(work, name, look)

    looking("answer_from_cache")
    looking("twins_in_flight")

    services.process([twin.pk])

    assert backend.calls == []
    row = fresh(twin)
    assert row.status == Status.SUCCEEDED and row.reused_from_id == leader.pk


def test_twin_in_flight__a_dead_workers_claim_is_not_waited_for(backend):
    stale = services.submit("a good day", MODEL)
    services.claim([stale.pk])
    ClassificationRequest.objects.filter(pk=stale.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    request = services.submit("a good day", MODEL)

    services.process([request.pk])

    assert len(backend.calls) == 1 and fresh(request).status == Status.SUCCEEDED


@pytest.mark.parametrize("change", [{"use_cache": False}, {"top_k": 1}, {"model": "acme/other"}])
def test_twin_in_flight__only_the_same_text_model_and_parameters(backend, change):
    leader = services.submit("a good day", MODEL)
    services.claim([leader.pk])
    other = services.submit("a good day", **{"model": MODEL, **change})

    services.process([other.pk])

    assert len(backend.calls) == 1 and fresh(other).status == Status.SUCCEEDED
