"""Reading results from objects: the latest result per model, and the one-query filter."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_textclass import services
from django_textclass.content import latest_results, with_label
from django_textclass.models import ClassificationRequest
from tests.content.helpers import OTHER, SENTIMENT, requests_of
from tests.fakes import rank
from tests.testapp.models import Comment, Post

pytestmark = pytest.mark.django_db


def answer_all():
    """Complete every pending request with the scripted ranking of its text."""
    ids = list(ClassificationRequest.objects.filter(status="pending").values_list("pk", flat=True))
    token, rows = services.claim(ids)
    services.complete(token, [(row, rank(row.text)) for row in rows])


@pytest.fixture
def comments(sent):
    """Three comments with results: negative, positive, then negative edited to positive."""
    negative = Comment.objects.create(title="", body="awful and slow")
    positive = Comment.objects.create(title="", body="a good thing")
    changed = Comment.objects.create(title="", body="bad first")
    answer_all()
    changed.body = "good after all"
    changed.save()
    answer_all()
    return negative, positive, changed


def test_latest_results__latest_succeeded_request_per_model(comments):
    negative, _, changed = comments

    results = latest_results(changed)

    assert set(results) == {SENTIMENT, OTHER}
    assert results[SENTIMENT].text == "good after all"
    assert results[SENTIMENT].top_label == "POSITIVE"
    assert latest_results(negative, SENTIMENT).top_label == "NEGATIVE"
    assert latest_results(negative, "acme/unknown") is None


def test_latest_results__a_pending_edit_keeps_the_last_result(comments):
    negative, _, _ = comments
    negative.body = "now it is good"
    negative.save()

    assert negative.textclass.latest(SENTIMENT).text == "awful and slow"
    assert negative.textclass.all().filter(status="pending").count() == 2


def test_accessor__latest_and_all(comments):
    _, positive, _ = comments

    assert positive.textclass.latest()[OTHER].labels[0]["label"] == "POSITIVE"
    assert positive.textclass.all().count() == 2


def test_with_label__one_query_and_the_right_objects(comments):
    negative, positive, changed = comments

    with CaptureQueriesContext(connection) as queries:
        found = list(Comment.objects.with_label(SENTIMENT, "NEGATIVE", 0.5).order_by("pk"))
    assert len(queries) == 1
    assert found == [negative]

    positives = with_label(Comment.objects.order_by("pk"), SENTIMENT, "POSITIVE")
    assert list(positives) == [positive, changed]  # changed: its latest result counts


def test_with_label__min_score_and_field(comments):
    negative, _, _ = comments
    score = latest_results(negative, SENTIMENT).top_score

    assert list(Comment.objects.with_label(SENTIMENT, "NEGATIVE", score)) == [negative]
    assert list(Comment.objects.with_label(SENTIMENT, "NEGATIVE", score + 0.001)) == []
    assert list(Comment.objects.with_label(SENTIMENT, "NEGATIVE", field="title")) == []
    assert list(Comment.objects.with_label(SENTIMENT, "NEGATIVE", field="body")) == [negative]


def test_with_label__string_primary_keys(sent):
    Post.objects.create(slug="a-1", body="terrible")
    Post.objects.create(slug="b-2", body="good stuff")
    Post.objects.create(slug="c-3", body="never answered")
    answer_all()
    ClassificationRequest.objects.filter(object_id="c-3").update(
        status="pending", top_label="NEGATIVE"
    )

    with CaptureQueriesContext(connection) as queries:
        found = list(Post.objects.with_label(SENTIMENT, "NEGATIVE").values_list("slug", flat=True))

    assert len(queries) == 1
    assert found == ["a-1"]


def test_with_label__composes_with_other_filters(comments):
    negative, _, _ = comments
    Comment.objects.filter(pk=negative.pk).update(hidden=True)

    visible_negative = Comment.objects.filter(hidden=False).with_label(SENTIMENT, "NEGATIVE")

    assert list(visible_negative) == []
    assert requests_of(negative)  # the history is still there


def test_annotate_latest__label_and_score_in_the_same_query(comments):
    negative, positive, changed = comments

    with CaptureQueriesContext(connection) as queries:
        rows = {
            c.pk: (c.textclass_label, c.textclass_score)
            for c in Comment.objects.annotate_latest(SENTIMENT)
        }

    assert len(queries) == 1
    assert rows[negative.pk][0] == "NEGATIVE"
    assert rows[changed.pk] == ("POSITIVE", pytest.approx(rank("good after all").top.score))
    fresh = Comment.objects.create(title="", body="no answer yet")
    assert Comment.objects.annotate_latest(SENTIMENT).get(pk=fresh.pk).textclass_label is None
