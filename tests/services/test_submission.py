"""submit(): what is stored, what is refused, what wakes a worker.

No broker and no worker: ``dispatch.send`` is replaced by a recorder (the one
publishing seam, ``sent``) and ``process()`` is called directly, as the task would.
"""

import hashlib

import pytest
from celery import current_app
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu.exceptions import OperationalError

from django_textclass import conf, dispatch, services
from django_textclass.exceptions import (
    InvalidInputError,
    TextClassConfigurationError,
)
from django_textclass.models import ClassificationRequest, Status
from django_textclass.types import Parameters
from tests.fakes import (
    textclass_settings,
)
from tests.services.helpers import (
    MODEL,
    REAL_SEND,
    fresh,
    pks,
)

pytestmark = pytest.mark.django_db


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
        "a good day",
        MODEL,
        function_to_apply="sigmoid",
        top_k=3,
        owner=user,
        use_cache=False,
        backend="other",
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
            [
                services.Item("a good day", ann, "bio"),
                services.Item("a bad day", bob, "motto"),
                services.Item("no source"),
            ],
            MODEL,
            long_text="truncate",
        )

    stored = [fresh(row) for row in rows]
    assert [(row.source, row.source_field) for row in stored] == [
        (ann, "bio"),
        (bob, "motto"),
        (None, ""),
    ]
    assert {row.model_id for row in stored} == {MODEL}
    assert {row.long_text_policy for row in stored} == {"truncate_head"}
    dispatch.flush()
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
    [
        "../admin",
        "owner/../admin",
        "https://huggingface.co/acme/model",
        "acme/my model",
        "a/b/c",
        "-acme/model",
        "acme/model/",
    ],
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


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc80" * 3])
def test_submit__rejects_lone_surrogates_not_unicode_encode_error(text, sent):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit(["fine", text])

    assert excinfo.value.field == "text"
    assert "surrogate" in excinfo.value.reason
    assert ClassificationRequest.objects.count() == 0
    assert sent.calls == []


def test_submit__a_surrogate_pair_is_a_character_not_a_surrogate():
    row = fresh(services.submit("smile \U0001f600"))

    assert row.text == "smile \U0001f600"


@pytest.mark.parametrize("use_cache", ["no", None, 0, 1, "false"])
def test_submit__use_cache_must_be_a_boolean(use_cache):
    # "no" raised Django's ValidationError and None an IntegrityError.
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit("a good day", use_cache=use_cache)

    assert excinfo.value.field == "use_cache"
    assert ClassificationRequest.objects.count() == 0


@pytest.mark.parametrize("source_field", ["f" * 101, "f" * 200, 5, None, "a\x00b", "\ud800"])
def test_submit__source_field_that_cannot_be_stored__refused(django_user_model, source_field):
    # 200 characters raised a DataError on PostgreSQL (the column holds 100).
    user = django_user_model.objects.create_user("ann")

    with pytest.raises(InvalidInputError) as excinfo:
        services.submit("a good day", source=user, source_field=source_field)

    assert excinfo.value.field == "source_field"
    assert ClassificationRequest.objects.count() == 0


def test_submit__source_field_of_100_characters__stored(django_user_model):
    user = django_user_model.objects.create_user("ann")

    row = fresh(services.submit("a good day", source=user, source_field="f" * 100))

    assert row.source_field == "f" * 100


def test_submit__unsaved_source__refused_not_stored_as_object_id_none(django_user_model):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit("a good day", source=django_user_model(username="unsaved"))

    assert excinfo.value.field == "source"
    assert "saved" in excinfo.value.reason
    assert ClassificationRequest.objects.count() == 0


@pytest.mark.parametrize("source", ["comments/1", 42, object()])
def test_submit__source_that_is_not_a_model_instance__refused(source):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit("a good day", source=source)

    assert excinfo.value.field == "source"
    assert ClassificationRequest.objects.count() == 0


def test_submit__owner_must_be_a_saved_user(django_user_model):
    from django.contrib.auth.models import AnonymousUser

    for owner in ["alice", 7, AnonymousUser(), django_user_model(username="unsaved")]:
        with pytest.raises(InvalidInputError) as excinfo:
            services.submit("a good day", owner=owner)
        assert excinfo.value.field == "owner"
    assert ClassificationRequest.objects.count() == 0


def test_submit__10001_texts__refused_before_anything_is_built(sent):
    with pytest.raises(InvalidInputError) as excinfo:
        services.submit(["a good day"] * 10_001)

    assert excinfo.value.field == "texts"
    assert "maximum is 10000" in excinfo.value.reason
    assert ClassificationRequest.objects.count() == 0
    assert sent.calls == []


def test_submit__at_most_the_per_call_limit__accepted(monkeypatch):
    monkeypatch.setattr(services.submission, "MAX_TEXTS_PER_SUBMIT", 3)

    assert len(services.submit(["a", "b", "c"])) == 3
    with pytest.raises(InvalidInputError):
        services.submit(["a", "b", "c", "d"])
    assert ClassificationRequest.objects.count() == 3


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
    dispatch.flush()  # published by the process's publishing thread
    assert sent.calls == [(pks(requests), None)]


@pytest.mark.parametrize("texts", [["one", "two"], "one"])
def test_submit__rollback_sends_nothing_and_stores_nothing(
    sent, django_capture_on_commit_callbacks, texts
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.submit(texts)
        raise RuntimeError("the caller's transaction rolls back")

    assert callbacks == []
    dispatch.flush()
    assert sent.calls == []
    assert ClassificationRequest.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_submit_one__in_autocommit_one_insert_then_the_wake_up(sent):
    """One row needs no transaction of its own: no BEGIN and COMMIT around its INSERT."""
    with CaptureQueriesContext(connection) as queries:
        request = services.submit("one")

    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["INSERT"]
    dispatch.flush()
    assert sent.calls == [([request.pk], None)]


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
    assert dispatch.flush(timeout=10)
    assert published == [[pks(requests)]]  # it was tried, and refused
    assert [row.status for row in ClassificationRequest.objects.order_by("pk")] == [
        Status.PENDING,
        Status.PENDING,
    ]
