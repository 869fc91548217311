"""Saving a registered object: one request per changed field and model, in its transaction."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from django_textclass import dispatch
from django_textclass.models import ClassificationRequest, Status, text_hash
from tests.content.helpers import OTHER, SENTIMENT, requests_of
from tests.testapp.models import Comment, Note, Post

pytestmark = pytest.mark.django_db


def pairs(requests):
    return sorted((r.source_field, r.model_id) for r in requests)


def test_create__one_request_per_field_and_model(sent):
    comment = Comment.objects.create(title="Nice title", body="I love it")

    rows = requests_of(comment)

    assert pairs(rows) == sorted(
        [("body", SENTIMENT), ("body", OTHER), ("title", SENTIMENT), ("title", OTHER)]
    )
    assert {r.text for r in rows if r.source_field == "body"} == {"I love it"}
    assert all(r.status == Status.PENDING for r in rows)
    assert all(r.source_hash == text_hash(r.text) for r in rows)
    assert all(r.long_text_policy == "truncate_head" for r in rows)  # the setting's default


def test_save_unchanged__no_request(sent):
    comment = Comment.objects.create(title="t", body="b")
    before = len(requests_of(comment))

    comment.save()
    Comment.objects.get(pk=comment.pk).save()

    assert len(requests_of(comment)) == before == 4


def test_save_one_changed_field__one_request_per_model_for_it(sent):
    comment = Comment.objects.create(title="t", body="b")
    first = {r.pk for r in requests_of(comment)}

    comment.body = "b, edited"
    comment.save()

    new = [r for r in requests_of(comment) if r.pk not in first]
    assert pairs(new) == [("body", OTHER), ("body", SENTIMENT)]
    assert {r.text for r in new} == {"b, edited"}


def test_save_changed_back__compares_with_the_last_request_only(sent):
    comment = Comment.objects.create(title="t", body="first")
    comment.body = "second"
    comment.save()
    comment.body = "first"
    comment.save()

    bodies = [r.text for r in requests_of(comment) if r.source_field == "body"]
    assert bodies == ["first"] * 2 + ["second"] * 2 + ["first"] * 2


def test_save__supersedes_a_pending_request_for_the_old_text(sent):
    comment = Comment.objects.create(title="t", body="old text")
    comment.body = "new text"
    comment.save()

    by_text = {}
    for row in requests_of(comment):
        if row.source_field == "body":
            by_text.setdefault(row.text, set()).add(row.status)
    assert by_text == {"old text": {Status.CANCELLED}, "new text": {Status.PENDING}}


def test_save_existing__one_query_reads_the_history_of_all_fields_and_models(sent):
    comment = Comment.objects.create(title="t", body="b")
    comment.title, comment.body = "t2", "b2"

    with CaptureQueriesContext(connection) as queries:
        comment.save()

    table = ClassificationRequest._meta.db_table
    reads = [
        q["sql"]
        for q in queries
        if q["sql"].startswith("SELECT") and table in q["sql"] and '"_day"' not in q["sql"]
    ]  # the roll-up's check before an update
    assert len(reads) == 1, reads
    assert len(requests_of(comment)) == 8


def test_save_blank_field__not_classified(sent):
    comment = Comment.objects.create(title="   ", body="")

    assert requests_of(comment) == []


def test_save_update_fields_without_registered_fields__no_query(sent):
    comment = Comment.objects.create(title="t", body="b")
    comment.hidden = True

    with CaptureQueriesContext(connection) as queries:
        comment.save(update_fields=["hidden"])

    assert len(queries) == 1  # the UPDATE itself
    assert len(requests_of(comment)) == 4


def test_condition__false_means_not_classified(sent, register):
    register(Note, ["text"], [SENTIMENT], condition=lambda note: note.public)

    hidden = Note.objects.create(text="secret", public=False)
    shown = Note.objects.create(text="hello", public=True)

    assert requests_of(hidden) == []
    assert len(requests_of(shown)) == 1


def test_registered_property__classified_like_a_field(sent, register):
    register(Note, ["shout"], [SENTIMENT])

    note = Note.objects.create(text="quiet")

    (row,) = requests_of(note)
    assert (row.source_field, row.text) == ("shout", "QUIET")


def test_string_primary_key__linked_by_its_string(sent):
    post = Post.objects.create(slug="hello-world", body="great post")

    (row,) = requests_of(post)
    assert row.object_id == "hello-world"
    assert row.source == post


def test_fixture_loading__raw_saves_are_not_classified(sent):
    from django.db.models.signals import post_save

    comment = Comment(title="t", body="b")
    comment.save_base(raw=True)
    post_save.send(Comment, instance=comment, created=True, raw=True, using="default")

    assert requests_of(comment) == []


@pytest.mark.django_db(transaction=True)
def test_commit__wake_ups_sent_after_commit(sent):
    with transaction.atomic():
        comment = Comment.objects.create(title="t", body="b")
        assert sent.calls == []

    dispatch.flush()
    assert sorted(sent.ids) == sorted(r.pk for r in requests_of(comment))


@pytest.mark.django_db(transaction=True)
def test_rollback__no_request_and_nothing_sent(sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        comment = Comment.objects.create(title="t", body="b")
        comment.body = "b2"
        comment.save()
        raise RuntimeError("the view failed after saving")

    assert ClassificationRequest.objects.count() == 0
    assert sent.calls == []


@pytest.mark.django_db(transaction=True)
def test_broker_refuses__save_still_succeeds(monkeypatch):
    from celery import current_app

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(current_app, "send_task", refuse)

    comment = Comment.objects.create(title="t", body="b")
    assert dispatch.flush(timeout=10)  # refused by now

    assert Comment.objects.filter(pk=comment.pk).exists()
    assert {r.status for r in requests_of(comment)} == {Status.PENDING}
