"""Every state transition of :mod:`django_textclass.services`, against a scripted backend.

No broker and no worker here: ``dispatch.send`` is replaced by a recorder (the one
publishing seam) and ``process()`` is called directly, the way the task would.
"""

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery import current_app
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu.exceptions import OperationalError

from django_textclass import conf, dispatch, services
from django_textclass.exceptions import (
    InvalidInputError,
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)
from django_textclass.models import ClassificationRequest, ClassificationScore, Status
from django_textclass.types import LabelScore, Parameters, Ranking
from tests.fakes import (
    SCRIPTED,
    ScriptedBackend,
    SendRecorder,
    rank,
    scripted_settings,
    textclass_settings,
)

pytestmark = pytest.mark.django_db

REAL_SEND = dispatch.send
MODEL = "acme/sentiment"


@pytest.fixture(autouse=True)
def backend():
    """Every alias served by the scripted backend, with an empty script and call log."""
    ScriptedBackend.reset()
    with scripted_settings():
        yield ScriptedBackend
    ScriptedBackend.reset()


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    """Wake-ups recorded instead of published."""
    recorder = SendRecorder()
    monkeypatch.setattr(dispatch, "send", recorder)
    return recorder


def fresh(request):
    return ClassificationRequest.objects.get(pk=request.pk)


def pks(requests):
    return [request.pk for request in requests]


def make_due(*requests):
    """Let time pass: the requests' backoff is over."""
    ClassificationRequest.objects.filter(pk__in=pks(requests)).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def scores_of(request):
    return list(
        ClassificationScore.objects.filter(request_id=request.pk)
        .order_by("rank")
        .values_list("rank", "label", "score")
    )


def transient(message="HTTP 502 from http://api", code="http_502", **kwargs):
    return TransientBackendError(message, code=code, **kwargs)


# --- submit ----------------------------------------------------------------------------


def test_submit__single_string_returns_one_request():
    request = services.submit("a good day")

    assert isinstance(request, ClassificationRequest)
    assert request.pk is not None
    assert ClassificationRequest.objects.count() == 1


def test_submit__list_returns_a_list_in_order():
    requests = services.submit(["one", "two", "three"])

    assert isinstance(requests, list)
    assert [request.text for request in requests] == ["one", "two", "three"]
    assert all(request.pk is not None for request in requests)
    assert ClassificationRequest.objects.count() == 3


def test_submit__stores_pending_row_with_defaults():
    before = timezone.now()
    request = services.submit("a good day")
    after = timezone.now()

    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.text == "a good day"
    assert row.text_hash == hashlib.sha256(b"a good day").hexdigest()
    assert row.model_id == conf.DEFAULT_MODEL
    assert row.function_to_apply == ""
    assert row.top_k is None
    assert row.use_cache is True
    assert row.backend == "default"
    assert row.attempts == 0
    assert row.owner is None
    assert row.content_type is None and row.object_id == ""
    assert row.claim_token is None and row.started_at is None and row.finished_at is None
    assert before <= row.next_attempt_at <= after
    assert before <= row.created_at <= after


def test_submit__default_model_comes_from_settings():
    with textclass_settings(DEFAULT_MODEL="acme/toxicity"):
        request = services.submit("a good day")

    assert fresh(request).model_id == "acme/toxicity"


def test_submit__stores_model_parameters_backend_and_owner(django_user_model):
    user = django_user_model.objects.create_user("ann")

    request = services.submit(
        "a good day", MODEL, function_to_apply="sigmoid", top_k=3, owner=user,
        use_cache=False, backend="other",
    )

    row = fresh(request)
    assert row.model_id == MODEL
    assert row.function_to_apply == "sigmoid"
    assert row.top_k == 3
    assert row.parameters == Parameters("sigmoid", 3)
    assert row.use_cache is False
    assert row.backend == "other"
    assert row.owner == user


def test_submit__source_stores_content_type_object_id_and_field(django_user_model):
    user = django_user_model.objects.create_user("ann")

    request = services.submit("a good day", source=user, source_field="bio")

    row = fresh(request)
    assert row.content_type == ContentType.objects.get_for_model(django_user_model)
    assert row.object_id == str(user.pk)
    assert row.source_field == "bio"
    assert row.source == user


def test_submit_many__each_item_keeps_its_own_source_in_one_wake_up(
    django_user_model, sent, django_capture_on_commit_callbacks
):
    ann = django_user_model.objects.create_user("ann")
    bob = django_user_model.objects.create_user("bob")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rows = services.submit_many(
            [services.Item("a good day", ann, "bio"), services.Item("a bad day", bob, "motto"),
             services.Item("no source")],
            MODEL, long_text="truncate",
        )

    stored = [fresh(row) for row in rows]
    assert [(row.source, row.source_field) for row in stored] == [
        (ann, "bio"), (bob, "motto"), (None, "")]
    assert {row.model_id for row in stored} == {MODEL}
    assert {row.long_text_policy for row in stored} == {"truncate_head"}
    assert len(callbacks) == 1 and sent.ids == pks(rows)


def test_submit_many__one_bad_text_stores_nothing(sent):
    with pytest.raises(InvalidInputError):
        services.submit_many([services.Item("fine"), services.Item("  ")], MODEL)

    assert not ClassificationRequest.objects.exists()
    assert sent.calls == []


@pytest.mark.parametrize(
    ("texts", "field"),
    [
        pytest.param([], "texts", id="empty-list"),
        pytest.param([42], "text", id="int-in-list"),
        pytest.param(["fine", None], "text", id="none-in-list"),
        pytest.param("", "text", id="empty"),
        pytest.param(" \t\n ", "text", id="whitespace"),
        pytest.param(["fine", "   "], "text", id="whitespace-in-list"),
        pytest.param("a\x00b", "text", id="nul"),
    ],
)
def test_submit__rejects_bad_texts_and_stores_nothing(texts, field, sent):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit(texts)

    assert excinfo.value.field == field
    assert ClassificationRequest.objects.count() == 0
    assert sent.calls == []


def test_submit__rejects_text_over_max_length():
    with textclass_settings(MAX_TEXT_LENGTH=10):
        with pytest.raises(InvalidInputError) as excinfo:
            services.submit(["x" * 10, "x" * 11])
        assert excinfo.value.field == "text"
        assert ClassificationRequest.objects.count() == 0

        services.submit("x" * 10)  # the limit itself is accepted

    assert ClassificationRequest.objects.count() == 1


@pytest.mark.parametrize(
    "model",
    ["../admin", "owner/../admin", "https://huggingface.co/acme/model", "acme/my model",
     "a/b/c", "-acme/model", "acme/model/"],
)
def test_submit__rejects_bad_model_id(model):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit("a good day", model)

    assert excinfo.value.field == "model"
    assert ClassificationRequest.objects.count() == 0


@pytest.mark.parametrize("function_to_apply", ["relu", "SOFTMAX", ""])
def test_submit__rejects_bad_function_to_apply(function_to_apply):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit("a good day", function_to_apply=function_to_apply)

    assert excinfo.value.field == "function_to_apply"
    assert ClassificationRequest.objects.count() == 0


@pytest.mark.parametrize("top_k", [0, -1, 1001, "3", True, 2.5])
def test_submit__rejects_bad_top_k(top_k):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit("a good day", top_k=top_k)

    assert excinfo.value.field == "top_k"
    assert ClassificationRequest.objects.count() == 0


def test_submit__rejects_unknown_backend_alias(sent):
    with pytest.raises(TextClassConfigurationError, match="nope"):
        services.submit("a good day", backend="nope")

    assert ClassificationRequest.objects.count() == 0
    assert sent.calls == []


@pytest.mark.parametrize("texts", [None, 42])
def test_submit__rejects_texts_that_are_neither_string_nor_list(texts):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit(texts)

    assert excinfo.value.field == "texts"


def test_submit__wakes_workers_once_after_commit(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        requests = services.submit(["one", "two", "three"])
        assert sent.calls == []  # nothing is published before the commit

    assert len(callbacks) == 1
    assert sent.calls == [(pks(requests), None)]


def test_submit__rollback_sends_nothing_and_stores_nothing(
    sent, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.submit(["one", "two"])
        raise RuntimeError("the caller's transaction rolls back")

    assert callbacks == []
    assert sent.calls == []
    assert ClassificationRequest.objects.count() == 0


def test_submit__broker_down_never_fails_and_rows_stay_pending(
    monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(dispatch, "send", REAL_SEND)
    published = []

    def refuse(*args, **kwargs):
        published.append(kwargs.get("args"))
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(current_app, "send_task", refuse)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        requests = services.submit(["a good day", "a bad day"])

    assert len(callbacks) == 1
    assert published == [[pks(requests)]]  # it was tried, and refused
    assert [row.status for row in ClassificationRequest.objects.order_by("pk")] == [
        Status.PENDING, Status.PENDING,
    ]


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
    monkeypatch.setattr(services.worker, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
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


@pytest.mark.parametrize(("step", "status"), [
    (None, Status.SUCCEEDED),
    (TransientBackendError("busy", status_code=503), Status.PENDING),
    (PermanentBackendError("no such model", status_code=404), Status.FAILED),
], ids=["succeeded", "rescheduled", "failed"])
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
    backend.script = [[Ranking((LabelScore("joy", 0.7), LabelScore("anger", 0.2),
                                LabelScore("fear", 0.1)))]]
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
        ("acme/one", ("a good day",)), ("acme/two", ("a bad day",)),
    ]
    assert fresh(one).status == fresh(two).status == Status.SUCCEEDED


def test_process__groups_by_parameters(backend):
    plain = services.submit("a good day", MODEL)
    sigmoid = services.submit("a bad day", MODEL, function_to_apply="sigmoid")
    top_one = services.submit("a fine day", MODEL, top_k=1)

    services.process(pks([plain, sigmoid, top_one]))

    assert sorted((str(call.parameters), call.texts) for call in backend.calls) == sorted([
        (str(Parameters()), ["a good day"]),
        (str(Parameters("sigmoid")), ["a bad day"]),
        (str(Parameters(top_k=1)), ["a fine day"]),
    ])


def test_process__groups_by_backend_alias(backend):
    default = services.submit("a good day")
    other = services.submit("a bad day", backend="other")

    services.process([default.pk, other.pk])

    assert sorted((call.alias, call.texts[0]) for call in backend.calls) == [
        ("default", "a good day"), ("other", "a bad day"),
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
        ["text 0", "text 1"], ["text 2", "text 3"], ["text 4"],
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


# --- backend errors --------------------------------------------------------------------


def test_process__transient_error_reschedules_with_backoff(backend, sent):
    backend.script = [transient("HTTP 502 from http://api: bad gateway")]
    request = services.submit("a good day")
    before = timezone.now()

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.error_code == "http_502"
    assert "bad gateway" in row.error_message
    assert row.attempts == 1
    assert row.claim_token is None and row.lease_expires_at is None
    assert row.next_attempt_at >= before + timedelta(seconds=0.1)  # half of BASE * 2**0
    ids, countdown = sent.calls[0]
    assert ids == [request.pk]
    assert 0.1 <= countdown <= 0.2
    assert row.next_attempt_at <= timezone.now() + timedelta(seconds=countdown)
    assert scores_of(request) == []


def test_process__transient_error_sends_exactly_one_wakeup(backend, sent):
    backend.script = [transient()]
    request = services.submit("a good day")

    services.process([request.pk])

    assert sent.ids == [request.pk]


def test_process__retry_after_hint_is_a_floor(backend, sent):
    backend.script = [transient(code="http_429", retry_after=3.0)]
    request = services.submit("a good day")
    before = timezone.now()

    services.process([request.pk])

    _, countdown = sent.calls[0]
    assert countdown == 3.0
    assert fresh(request).next_attempt_at >= before + timedelta(seconds=3)


def test_process__retry_after_hint_is_capped(backend, sent):
    backend.script = [transient(code="http_429", retry_after=3600)]
    request = services.submit("a good day")

    services.process([request.pk])
    after = timezone.now()

    _, countdown = sent.calls[0]
    assert countdown == 5.0  # RETRY_HINT_MAX of the test settings
    assert fresh(request).next_attempt_at <= after + timedelta(seconds=5)


def test_process__after_a_503_the_next_call_waits_for_the_model(backend):
    backend.script = [transient("loading", code="http_503", retry_after=1.0, model_loading=True)]
    request = services.submit("a good day")

    services.process([request.pk])
    make_due(request)
    services.process([request.pk])

    assert [call.wait_for_model for call in backend.calls] == [False, True]
    row = fresh(request)
    assert row.status == Status.SUCCEEDED
    assert row.attempts == 2
    assert row.error_code == "" and row.error_message == ""


def test_process__after_another_transient_error_the_next_call_does_not_wait(backend):
    backend.script = [transient(code="http_502")]
    request = services.submit("a good day")

    services.process([request.pk])
    make_due(request)
    services.process([request.pk])

    assert [call.wait_for_model for call in backend.calls] == [False, False]


def test_process__model_loading_flag_makes_the_next_call_wait(backend):
    backend.script = [transient("warming up", code="model_loading", model_loading=True)]
    request = services.submit("a good day")

    services.process([request.pk])
    make_due(request)
    services.process([request.pk])

    assert [call.wait_for_model for call in backend.calls] == [False, True]


def test_process__fails_when_attempts_are_exhausted(backend, sent):
    backend.script = [transient(f"failure {n}", code="http_500") for n in range(1, 5)]
    request = services.submit("a good day")

    for _ in range(3):
        services.process([request.pk])
        assert fresh(request).status == Status.PENDING
        make_due(request)
    wakeups_before_last = len(sent.calls)
    services.process([request.pk])

    row = fresh(request)
    assert len(backend.calls) == 4  # MAX_ATTEMPTS of the test settings
    assert row.status == Status.FAILED
    assert row.error_code == "retries_exhausted"
    assert "4 attempt" in row.error_message
    assert "failure 4" in row.error_message
    assert row.attempts == 4
    assert row.finished_at is not None
    assert row.next_attempt_at is None and row.claim_token is None
    assert len(sent.calls) == wakeups_before_last  # no wake-up for a failed request


def test_process__max_attempts_one_fails_on_the_first_transient_error(backend, sent):
    backend.script = [transient("only try")]
    request = services.submit("a good day")

    with textclass_settings(MAX_ATTEMPTS=1):
        services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "retries_exhausted"
    assert sent.calls == []


def test_process__permanent_error_fails_at_once(backend, sent):
    backend.script = [PermanentBackendError("HTTP 404 from http://api (no such model)",
                                            code="http_404")]
    request = services.submit("a good day")

    services.process([request.pk])
    services.process([request.pk])

    row = fresh(request)
    assert len(backend.calls) == 1
    assert row.status == Status.FAILED
    assert row.error_code == "http_404"
    assert "no such model" in row.error_message
    assert row.attempts == 1
    assert row.finished_at is not None and row.claim_token is None
    assert sent.calls == []
    assert scores_of(request) == []


def test_process__wrong_number_of_rankings_sends_the_texts_one_by_one(backend):
    backend.script = [[rank("only one")]]
    requests = services.submit(["one", "two"])

    services.process(pks(requests))

    assert [call.texts for call in backend.calls] == [["one", "two"], ["one"], ["two"]]
    for request in requests:
        row = fresh(request)
        assert row.status == Status.SUCCEEDED
        assert row.labels == rank(row.text).as_list()


def test_process__a_wrong_answer_for_one_text_fails_only_that_text(backend):
    backend.script = [[rank("only one")], [Ranking(())], None]
    requests = services.submit(["one", "two"])

    services.process(pks(requests))

    first, second = (fresh(request) for request in requests)
    assert first.status == Status.FAILED and first.error_code == "invalid_response"
    assert second.status == Status.SUCCEEDED


@pytest.mark.parametrize("status", [400, 413, 422])
def test_process__batch_refused_for_its_input_is_split(backend, status):
    refused = PermanentBackendError(f"HTTP {status}", code=f"http_{status}", status_code=status)
    too_long = PermanentBackendError("too long", code="http_422", status_code=422)
    backend.script = [refused, None, too_long]
    requests = services.submit(["fine", "far too long"])

    services.process(pks(requests))

    fine, long_one = (fresh(request) for request in requests)
    assert len(backend.calls) == 3
    assert fine.status == Status.SUCCEEDED
    assert long_one.status == Status.FAILED and long_one.error_code == "http_422"


def test_process__batch_refused_for_auth_is_not_split(backend):
    backend.script = [PermanentBackendError("HTTP 401", code="http_401", status_code=401)]
    requests = services.submit(["one", "two"])

    services.process(pks(requests))

    assert len(backend.calls) == 1
    assert {fresh(request).error_code for request in requests} == {"http_401"}


def test_process__empty_ranking_fails_as_invalid_response(backend):
    backend.script = [[Ranking(())]]
    request = services.submit("a good day")

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "invalid_response"


def test_process__unexpected_backend_exception_is_retried_then_fails(backend, sent):
    attempts = settings.TEXTCLASS["MAX_ATTEMPTS"]
    backend.script = [ZeroDivisionError("bug in a custom backend")] * attempts
    request = services.submit("a good day")

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.error_code == "backend_exception"
    assert "ZeroDivisionError" in row.error_message
    for _ in range(attempts - 1):
        ClassificationRequest.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        services.process([request.pk])
    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "retries_exhausted"
    assert len(backend.calls) == attempts


def test_process__label_longer_than_the_column_fails_as_invalid_response(backend, sent):
    backend.script = [[Ranking((LabelScore("x" * 201, 1.0),))]]
    request = services.submit("a good day")

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "invalid_response"


def test_process__configuration_error_from_the_backend_fails_the_requests(backend, sent):
    backend.script = [TextClassConfigurationError("TOKEN is not set")]
    request = services.submit("a good day")

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "configuration"
    assert "TOKEN is not set" in row.error_message
    assert len(backend.calls) == 1
    assert sent.calls == []


def test_process__misconfigured_backend_fails_the_requests(backend):
    request = services.submit("a good day")
    broken = {"default": {"BACKEND": SCRIPTED, "OPTIONS": {"NO_SUCH_OPTION": 1}}}

    with textclass_settings(BACKENDS=broken):
        services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "configuration"
    assert "NO_SUCH_OPTION" in row.error_message
    assert backend.calls == []


def test_process__one_failing_group_does_not_stop_the_others(backend):
    backend.script = [PermanentBackendError("HTTP 400", code="http_400"), None]
    broken = services.submit("a good day", "acme/one")
    fine = services.submit("a bad day", "acme/two")

    services.process([broken.pk, fine.pk])

    assert fresh(broken).status == Status.FAILED
    assert fresh(fine).status == Status.SUCCEEDED


def test_process__a_failing_batch_does_not_stop_the_next_batch(backend):
    backend.script = [transient(), None]
    requests = services.submit(["one", "two", "three"])

    with scripted_settings({"MAX_BATCH_SIZE": 2}):
        services.process(pks(requests))

    assert [fresh(request).status for request in requests] == [
        Status.PENDING, Status.PENDING, Status.SUCCEEDED,
    ]


# --- retry_delay -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "backoff"),
    [(0, 0.2), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (30, 1.0)],
)
def test_retry_delay__backoff_grows_and_is_capped(monkeypatch, attempts, backoff):
    bounds = []

    def uniform(low, high):
        bounds.append((low, high))
        return high

    monkeypatch.setattr(services.worker.random, "uniform", uniform)

    assert services.retry_delay(attempts) == pytest.approx(backoff)
    assert bounds == [(pytest.approx(backoff / 2), pytest.approx(backoff))]


def test_retry_delay__jitter_stays_within_half_and_full():
    delays = [services.retry_delay(3) for _ in range(500)]

    assert all(0.4 <= delay <= 0.8 for delay in delays)
    assert len(set(delays)) > 1  # it is jittered
    assert min(delays) < 0.5 and max(delays) > 0.7


def test_retry_delay__hint_is_a_floor():
    assert services.retry_delay(1, hint=3) == 3.0
    assert 0.5 <= services.retry_delay(4, hint=0.01) <= 1.0  # a small hint does not shorten


def test_retry_delay__hint_is_capped():
    assert services.retry_delay(1, hint=3600) == 5.0
    with textclass_settings(RETRY_HINT_MAX=2.5):
        assert services.retry_delay(1, hint=3600) == 2.5


# --- idempotency and claim tokens ------------------------------------------------------


def test_process__twice_calls_the_backend_once_and_stores_one_set_of_scores(backend):
    request = services.submit("a good day")

    assert services.process([request.pk]) == 1
    assert services.process([request.pk]) == 0

    assert len(backend.calls) == 1
    assert len(scores_of(request)) == 2
    assert ClassificationScore.objects.count() == 2
    assert fresh(request).attempts == 1


def test_complete__replaces_scores_never_appends():
    request = services.submit("a good day")
    token, (row,) = services.claim([request.pk])
    ClassificationScore.objects.create(request_id=request.pk, rank=5, label="stray", score=0.5)

    assert services.complete(token, [(row, rank("a good day"))]) == 1

    assert [label for _, label, _ in scores_of(request)] == ["POSITIVE", "NEGATIVE"]


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


# --- sweep -----------------------------------------------------------------------------


def test_sweep__requeues_running_request_past_its_lease(sent):
    request = services.submit("a good day")
    services.claim([request.pk])
    now = timezone.now() + timedelta(seconds=61)  # LEASE_SECONDS is 60

    counts = services.sweep(now=now)

    assert counts == {"requeued": 1, "failed": 0, "dispatched": 1}
    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.error_code == "lease_expired"
    assert row.claim_token is None and row.lease_expires_at is None
    assert row.next_attempt_at == now
    assert row.attempts == 1  # the lost attempt counts
    assert sent.calls == [([request.pk], None)]


def test_sweep__leaves_running_request_within_its_lease(sent):
    request = services.submit("a good day")
    token, _ = services.claim([request.pk])

    counts = services.sweep(now=timezone.now() + timedelta(seconds=30))

    assert counts == {"requeued": 0, "failed": 0, "dispatched": 0}
    assert fresh(request).status == Status.RUNNING
    assert fresh(request).claim_token == token
    assert sent.calls == []


def test_sweep__fails_request_past_its_lease_without_attempts_left(sent):
    request = services.submit("a good day")
    services.claim([request.pk])
    ClassificationRequest.objects.filter(pk=request.pk).update(attempts=4)
    now = timezone.now() + timedelta(seconds=61)

    counts = services.sweep(now=now)

    assert counts == {"requeued": 0, "failed": 1, "dispatched": 0}
    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "lease_expired"
    assert row.finished_at == now
    assert row.claim_token is None and row.next_attempt_at is None
    assert sent.calls == []


def test_sweep__dispatches_overdue_pending_requests_and_bumps_them(sent):
    overdue = services.submit("a good day")
    now = timezone.now()
    ClassificationRequest.objects.filter(pk=overdue.pk).update(
        next_attempt_at=now - timedelta(seconds=10)
    )

    counts = services.sweep(now=now)

    assert counts == {"requeued": 0, "failed": 0, "dispatched": 1}
    assert sent.calls == [([overdue.pk], None)]
    assert fresh(overdue).next_attempt_at == now
    assert fresh(overdue).status == Status.PENDING
    # Bumped: the next sweep within the grace period leaves it alone.
    sent.calls.clear()
    assert services.sweep(now=now + timedelta(seconds=1))["dispatched"] == 0
    assert sent.calls == []


def test_sweep__leaves_requests_that_are_not_yet_overdue(sent):
    recent, future = services.submit(["one", "two"])
    now = timezone.now()
    ClassificationRequest.objects.filter(pk=recent.pk).update(
        next_attempt_at=now - timedelta(seconds=1)  # due, but within the 2 s grace
    )
    ClassificationRequest.objects.filter(pk=future.pk).update(
        next_attempt_at=now + timedelta(seconds=30)
    )

    counts = services.sweep(now=now)

    assert counts == {"requeued": 0, "failed": 0, "dispatched": 0}
    assert sent.calls == []
    assert fresh(recent).next_attempt_at == now - timedelta(seconds=1)


def test_sweep__ignores_finished_requests(sent):
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(
        status=Status.CANCELLED, next_attempt_at=timezone.now() - timedelta(hours=1)
    )

    assert services.sweep() == {"requeued": 0, "failed": 0, "dispatched": 0}
    assert sent.calls == []


# --- cancel and retry ------------------------------------------------------------------


def test_cancel__cancels_a_pending_request():
    request = services.submit("a good day")

    assert services.cancel(request) is True

    row = fresh(request)
    assert row.status == Status.CANCELLED
    assert row.finished_at is not None
    assert row.next_attempt_at is None
    assert services.process([request.pk]) == 0


@pytest.mark.parametrize("status", [Status.RUNNING, Status.SUCCEEDED, Status.FAILED])
def test_cancel__refuses_requests_that_are_not_pending(status):
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(status=status)

    assert services.cancel(request) is False
    assert fresh(request).status == status


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED])
def test_retry__sends_a_failed_or_cancelled_request_again(
    status, sent, django_capture_on_commit_callbacks
):
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(
        status=status, attempts=4, error_code="retries_exhausted", error_message="gave up",
        started_at=timezone.now(), finished_at=timezone.now(), next_attempt_at=None,
    )
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.retry(request) is True
        assert sent.calls == []  # not before the commit

    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.attempts == 0
    assert row.error_code == "" and row.error_message == ""
    assert row.started_at is None and row.finished_at is None
    assert row.next_attempt_at >= before
    assert len(callbacks) == 1
    assert sent.calls == [([request.pk], None)]


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.SUCCEEDED])
def test_retry__refuses_requests_that_are_not_failed_or_cancelled(
    status, sent, django_capture_on_commit_callbacks
):
    request = services.submit("a good day")
    ClassificationRequest.objects.filter(pk=request.pk).update(status=status, attempts=2)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert services.retry(request) is False

    assert callbacks == []
    assert sent.calls == []
    assert fresh(request).status == status
    assert fresh(request).attempts == 2


def test_retry__a_retried_request_is_classified_again(backend):
    backend.script = [PermanentBackendError("HTTP 500", code="http_500")]
    request = services.submit("a good day")
    services.process([request.pk])
    assert fresh(request).status == Status.FAILED

    services.retry(request)
    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.SUCCEEDED
    assert row.attempts == 1
    assert len(backend.calls) == 2
