"""The models' own behaviour: properties, string forms, constraints and index names."""

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from django_textclass.models import (
    ClassificationRequest,
    ClassificationScore,
    Status,
    text_hash,
)
from django_textclass.types import Parameters

MODEL = "acme/sentiment"


def make_request(**fields):
    fields.setdefault("model_id", MODEL)
    fields.setdefault("text", "a good day")
    fields.setdefault("text_hash", text_hash(fields["text"]))
    return ClassificationRequest.objects.create(**fields)


def test_text_hash__is_the_sha256_of_the_utf8_text():
    assert text_hash("café") == hashlib.sha256("café".encode()).hexdigest()
    assert len(text_hash("x")) == 64
    assert text_hash("a") != text_hash("a ")


@pytest.mark.django_db
def test_labels__are_ordered_by_rank_whatever_the_insertion_order():
    request = make_request()
    for rank, label, score in [(2, "fear", 0.1), (0, "joy", 0.7), (1, "anger", 0.2)]:
        ClassificationScore.objects.create(request=request, rank=rank, label=label, score=score)

    assert request.labels == [
        {"label": "joy", "score": 0.7},
        {"label": "anger", "score": 0.2},
        {"label": "fear", "score": 0.1},
    ]


@pytest.mark.django_db
def test_labels__are_empty_without_scores():
    assert make_request().labels == []


@pytest.mark.django_db
def test_labels__belong_to_their_own_request():
    mine, other = make_request(), make_request()
    ClassificationScore.objects.create(request=other, rank=0, label="joy", score=0.9)

    assert mine.labels == []
    assert other.labels == [{"label": "joy", "score": 0.9}]


@pytest.mark.parametrize(
    ("function_to_apply", "top_k", "expected"),
    [
        ("", None, Parameters()),
        ("sigmoid", None, Parameters("sigmoid")),
        ("none", 3, Parameters("none", 3)),
        ("", 5, Parameters(top_k=5)),
    ],
)
def test_parameters__map_the_stored_fields(function_to_apply, top_k, expected):
    request = ClassificationRequest(function_to_apply=function_to_apply, top_k=top_k)

    assert request.parameters == expected
    assert request.parameters.function_to_apply == expected.function_to_apply


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        (Status.PENDING, False),
        (Status.RUNNING, False),
        (Status.SUCCEEDED, True),
        (Status.FAILED, True),
        (Status.CANCELLED, True),
    ],
)
def test_is_finished__true_only_for_terminal_statuses(status, finished):
    assert ClassificationRequest(status=status).is_finished is finished


def test_duration__from_last_start_to_finish():
    started = timezone.now()
    finished = started + timedelta(seconds=2.5)
    request = ClassificationRequest(started_at=started, finished_at=finished)

    assert request.duration == timedelta(seconds=2.5)


@pytest.mark.parametrize(("started", "finished"), [(False, False), (True, False), (False, True)])
def test_duration__none_until_started_and_finished(started, finished):
    now = timezone.now()
    request = ClassificationRequest(
        started_at=now if started else None, finished_at=now if finished else None
    )

    assert request.duration is None


def test_str__names_model_uuid_and_status():
    public_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    request = ClassificationRequest(model_id=MODEL, uuid=public_id, status=Status.RUNNING)

    assert str(request) == f"{MODEL} 12345678-1234-5678-1234-567812345678 (running)"


def test_str__of_a_score():
    assert str(ClassificationScore(label="POSITIVE", score=0.987654)) == "POSITIVE: 0.9877"


@pytest.mark.django_db
def test_defaults__a_new_request_is_pending_and_due():
    before = timezone.now()
    request = make_request()

    assert request.status == Status.PENDING
    assert request.attempts == 0
    assert request.use_cache is True
    assert before <= request.next_attempt_at <= timezone.now()
    assert before <= request.created_at <= timezone.now()


@pytest.mark.django_db
def test_uuid__is_generated_and_unique():
    first, second = make_request(), make_request()

    assert isinstance(first.uuid, uuid.UUID)
    assert first.uuid != second.uuid
    with pytest.raises(IntegrityError), transaction.atomic():
        make_request(uuid=first.uuid)


@pytest.mark.django_db
def test_score__rank_is_unique_per_request():
    request = make_request()
    ClassificationScore.objects.create(request=request, rank=0, label="joy", score=0.9)

    with pytest.raises(IntegrityError), transaction.atomic():
        ClassificationScore.objects.create(request=request, rank=0, label="fear", score=0.1)
    ClassificationScore.objects.create(request=make_request(), rank=0, label="joy", score=0.9)


@pytest.mark.django_db
def test_scores__are_deleted_with_their_request():
    request = make_request()
    ClassificationScore.objects.create(request=request, rank=0, label="joy", score=0.9)

    request.delete()

    assert ClassificationScore.objects.count() == 0


@pytest.mark.django_db
def test_reused_from__is_cleared_when_the_source_is_deleted():
    source = make_request(status=Status.SUCCEEDED)
    reuser = make_request(status=Status.SUCCEEDED, reused_from=source)

    source.delete()

    reuser.refresh_from_db()
    assert reuser.reused_from is None


def test_meta__request_indexes_have_explicit_names():
    names = {index.name for index in ClassificationRequest._meta.indexes}

    assert names == {
        "textclass_req_status_due",
        "textclass_req_created",
        "textclass_req_owner_created",
        "textclass_req_model_dash",
        "textclass_req_model_label",
        "textclass_req_source",
        "textclass_req_cache",
        "textclass_req_in_flight",
        "textclass_req_pending",
        "textclass_req_failed",
        "textclass_req_key",
    }


def test_meta__key_index_covers_keyed_requests_only():
    (index,) = [i for i in ClassificationRequest._meta.indexes if i.name == "textclass_req_key"]

    assert index.fields == ["model_key", "created_at"]
    assert str(index.condition) == "(NOT (AND: ('model_key', '')))"


def test_meta__cache_index_covers_succeeded_requests_only():
    (cache,) = [i for i in ClassificationRequest._meta.indexes if i.name == "textclass_req_cache"]

    assert cache.fields == ["text_hash", "model_id", "-finished_at"]
    assert cache.condition is not None
    assert ("status", "succeeded") in cache.condition.children


def test_meta__score_index_and_constraint_names():
    assert [index.name for index in ClassificationScore._meta.indexes] == ["textclass_score_label"]
    assert [c.name for c in ClassificationScore._meta.constraints] == ["textclass_score_rank_uniq"]


@pytest.mark.django_db
def test_meta__index_names_exist_in_the_database():
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(
            cursor, ClassificationRequest._meta.db_table
        )
    for index in ClassificationRequest._meta.indexes:
        assert index.name in constraints


def test_meta__default_ordering_is_newest_first():
    assert ClassificationRequest._meta.ordering == ["-created_at", "-id"]


@pytest.mark.django_db
def test_meta__default_ordering_lists_newest_first():
    now = timezone.now()
    old = make_request(created_at=now - timedelta(minutes=1))
    new = make_request(created_at=now)

    assert list(ClassificationRequest.objects.all()) == [new, old]


def test_meta__in_flight_index_covers_running_requests_only():
    (index,) = [
        i for i in ClassificationRequest._meta.indexes if i.name == "textclass_req_in_flight"
    ]
    assert index.condition == Q(status="running")
    assert index.fields == ["text_hash", "model_id"]
