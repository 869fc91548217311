"""Deleting a registered object: no dangling work; history kept or removed by a setting."""

import pytest
from django.db import transaction

from django_textclass import services
from django_textclass.models import ClassificationRequest, Status
from django_textclass.policies import Split
from tests.content.helpers import SENTIMENT
from tests.fakes import rank, textclass_settings
from tests.testapp.models import Comment, Note

pytestmark = pytest.mark.django_db


def statuses(object_id):
    return sorted(
        ClassificationRequest.objects.filter(object_id=str(object_id)).values_list(
            "status", flat=True
        )
    )


def test_delete__pending_cancelled_and_history_kept(sent):
    comment = Comment.objects.create(title="t", body="b")
    done = ClassificationRequest.objects.filter(object_id=str(comment.pk), source_field="title")
    token, rows = services.claim(list(done.values_list("pk", flat=True)))
    services.complete(token, [(row, rank(row.text)) for row in rows])
    pk = comment.pk

    comment.delete()

    assert statuses(pk) == [Status.CANCELLED] * 2 + [Status.SUCCEEDED] * 2


def test_delete__history_removed_when_configured(sent):
    comment = Comment.objects.create(title="t", body="b")
    pk = comment.pk

    with textclass_settings(DELETE_HISTORY_WITH_SOURCE=True):
        comment.delete()

    assert statuses(pk) == []


def test_queryset_delete__same_as_instance_delete(sent):
    first = Comment.objects.create(title="t", body="b")
    second = Comment.objects.create(title="t", body="c")

    Comment.objects.all().delete()

    assert set(statuses(first.pk) + statuses(second.pk)) == {Status.CANCELLED}


def test_delete_rolled_back__nothing_cancelled(sent):
    comment = Comment.objects.create(title="t", body="b")
    pk = comment.pk

    with pytest.raises(RuntimeError), transaction.atomic():
        comment.delete()
        raise RuntimeError

    assert set(statuses(pk)) == {Status.PENDING}


def test_delete__waiting_split_cancelled_with_its_chunks(sent, register):
    register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=40))
    note = Note.objects.create(text="good things happen " * 6)
    parent = ClassificationRequest.objects.get(object_id=str(note.pk))

    note.delete()

    parent.refresh_from_db()
    assert parent.status == Status.CANCELLED
    assert set(parent.chunks.values_list("status", flat=True)) == {Status.CANCELLED}


def test_unregistered_model__delete_sends_no_query_to_requests(sent, django_assert_num_queries):
    note = Note.objects.create(text="not registered")

    with django_assert_num_queries(1):  # the DELETE itself: fast delete still works
        Note.objects.filter(pk=note.pk).delete()
