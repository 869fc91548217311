"""The history changelist: columns, filters, search, capped count, query counts."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_textclass.admin import ClassificationRequestAdmin
from django_textclass.admin.changelist import CappedCountPaginator
from django_textclass.admin.filters import ModelFilter, OwnerFilter, TopLabelFilter
from django_textclass.models import ClassificationRequest
from tests.admin.data import DAY1, MODEL, OTHER_MODEL, make_request

URL = reverse("admin:django_textclass_classificationrequest_changelist")


def shown(response):
    """The primary keys listed on the page."""
    assert response.status_code == 200, response
    return {row.pk for row in response.context["cl"].result_list}


def test_columns__badge_label_score_duration_owner(admin_client, history):
    body = admin_client.get(URL).content.decode()

    assert 'class="textclass-badge"' in body and ">succeeded</span>" in body
    assert "POSITIVE (1.000)" in body  # top label and its score
    assert "0.100 s" in body  # duration of the first request (started -> finished)
    assert "olivia" in body


def test_model_column__cut_by_the_style_sheet_with_the_whole_id_in_its_title(admin_client, history):
    body = admin_client.get(URL).content.decode()

    assert f'<span class="textclass-model" title="{MODEL}">{MODEL}</span>' in body
    rule = body[body.index("#result_list .textclass-model {") :].split("}", 1)[0]
    assert "text-overflow: ellipsis" in rule and "max-width" in rule


def test_model_column__sorts_by_model_id(admin_client, history):
    column = admin_client.get(URL).context["cl"].list_display.index("model_column")

    response = admin_client.get(URL, {"o": f"-{column}"})

    listed = [row.model_id for row in response.context["cl"].result_list]
    assert listed == sorted(listed, reverse=True)


def test_text__html_and_script_shown_escaped(admin_client, db):
    make_request(text='<script>alert("x")</script><img src=x onerror=alert(1)> hello')

    body = admin_client.get(URL).content.decode()

    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_text__cut_short_in_the_list(admin_client, db):
    make_request(text="word " * 100)

    body = admin_client.get(URL).content.decode()

    assert "word " * 15 in body and "word " * 30 not in body


def test_source_link__points_to_the_source_admin_page(admin_client, db, admin_user):
    make_request(
        text="from a user",
        content_type=ContentType.objects.get_for_model(admin_user),
        object_id=str(admin_user.pk),
    )

    body = admin_client.get(URL).content.decode()

    assert reverse("admin:auth_user_change", args=[admin_user.pk]) in body
    assert f"auth.user #{admin_user.pk}" in body


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "failed"}, {"failed0", "failed1"}),
        ({"status__exact": "pending"}, {"pending"}),
        ({"model_id": OTHER_MODEL}, {"other_model"}),
        ({"top_label": "NEUTRAL"}, {"succeeded9"}),
        ({"model_id": MODEL, "top_label": "NEGATIVE"}, {"succeeded6", "succeeded7", "succeeded8"}),
        ({"backend": "offline"}, set()),
        (
            {"created_at__year": "2026", "created_at__month": "3", "created_at__day": "1"},
            {f"succeeded{i}" for i in range(6)} | {"other_model"},
        ),
    ],
)
def test_filters__keep_the_matching_rows(admin_client, history, params, expected):
    assert shown(admin_client.get(URL, params)) == {history[name].pk for name in expected}


def test_owner_filter__by_user_id(admin_client, history, owner):
    pks = shown(admin_client.get(URL, {"owner": str(owner.pk)}))

    assert pks == {row.pk for row in history.values() if row.owner_id == owner.pk}
    assert len(pks) == 13
    assert shown(admin_client.get(URL, {"owner": "not-a-number"})) == set()


def test_created_filter__past_seven_days(admin_client, history):
    recent = make_request(text="just now")  # created now; the seeded history is older
    now = timezone.now()

    response = admin_client.get(
        URL,
        {
            "created_at__gte": (now - timedelta(days=7)).isoformat(),
            "created_at__lt": (now + timedelta(days=1)).isoformat(),
        },
    )

    assert shown(response) == {recent.pk}


def test_filter_choices__come_from_the_data(rf, history, owner, admin_user):
    request = rf.get(URL)
    request.user = admin_user

    models = ModelFilter(request, {}, None, None).lookups(request, None)
    labels = TopLabelFilter(request, {}, None, None).lookups(request, None)
    owners = OwnerFilter(request, {}, None, None).lookups(request, None)
    narrowed = rf.get(URL, {"model_id": OTHER_MODEL})
    other_labels = TopLabelFilter(narrowed, {}, None, None).lookups(narrowed, None)

    assert models == [(MODEL, MODEL), (OTHER_MODEL, OTHER_MODEL)]
    assert [value for value, _ in labels] == ["NEGATIVE", "NEUTRAL", "POSITIVE", "SPORTS"]
    assert owners == [(str(owner.pk), "olivia")]
    assert other_labels == [("SPORTS", "SPORTS")]


def test_search__by_text_and_by_uuid(admin_client, history):
    by_text = shown(admin_client.get(URL, {"q": "neutral"}))
    target = history["failed1"]
    by_uuid = shown(admin_client.get(URL, {"q": str(target.uuid)}))

    assert by_text == {history["succeeded9"].pk}
    assert by_uuid == {target.pk}
    assert shown(admin_client.get(URL, {"q": str(uuid.uuid4())})) == set()


def test_date_hierarchy__links_for_each_day_without_distinct_queries(admin_client, history):
    with CaptureQueriesContext(connection) as queries:
        body = admin_client.get(URL).content.decode()

    # All rows are in March 2026: the hierarchy opens at that month, with its two days.
    assert "created_at__day=1" in body and "created_at__day=2" in body
    assert "created_at__day=3" not in body
    assert not [q for q in queries if "DISTINCT" in q["sql"].upper()]


def test_count__is_capped_never_a_full_count(admin_client, history, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 5)
    monkeypatch.setattr(ClassificationRequestAdmin, "list_per_page", 2)  # more than a page
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(URL)

    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)
    assert response.context["cl"].count_capped
    assert "More than 5 classification requests" in response.content.decode()


def test_count__a_short_result_is_read_once_and_not_counted(admin_client, history):
    table = ClassificationRequest._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(URL, {"q": "negative"})

    reads = [q["sql"] for q in queries if f'FROM "{table}"' in q["sql"] and "LIKE" in q["sql"]]
    assert len(reads) == 1 and "COUNT(" not in reads[0].upper(), reads
    assert response.context["cl"].result_count == 3
    assert len(response.context["cl"].result_list) == 3
    assert "3 classification requests" in response.content.decode()


def test_count__page_two_of_a_long_result(admin_client, history, monkeypatch):
    monkeypatch.setattr(ClassificationRequestAdmin, "list_per_page", 5)

    first = admin_client.get(URL).context["cl"]
    second = admin_client.get(URL, {"p": 2}).context["cl"]

    assert first.result_count == second.result_count == 16
    assert len(first.result_list) == len(second.result_list) == 5
    assert not {row.pk for row in first.result_list} & {row.pk for row in second.result_list}


def test_count__exact_below_the_cap(admin_client, history):
    response = admin_client.get(URL, {"status__exact": "failed"})

    assert response.context["cl"].result_count == 2
    assert not response.context["cl"].count_capped
    assert "2 classification requests" in response.content.decode()


def make_rows(n, owner):
    for i in range(n):
        make_request(
            text=f"row {i}",
            status="succeeded",
            top_label="POSITIVE",
            top_score=0.9,
            started_at=DAY1,
            finished_at=DAY1,
            owner=owner,
            content_type=ContentType.objects.get_for_model(owner),
            object_id=str(owner.pk),
        )


def count_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    return len(queries), len(response.context["cl"].result_list)


def test_query_count__does_not_grow_with_rows_shown(
    admin_client, db, owner, django_assert_max_num_queries
):
    make_rows(5, owner)
    few = count_queries(admin_client)
    make_rows(45, owner)
    many = count_queries(admin_client)

    assert few[1] == 5 and many[1] == 50
    assert few[0] == many[0]
    # Session, user, the capped count, the page, and the filters' index walks.
    with django_assert_max_num_queries(10):
        admin_client.get(URL)


def test_changelist__links_to_dashboard_and_export_with_the_filters(admin_client, history):
    body = admin_client.get(URL, {"status__exact": "failed"}).content.decode()

    dashboard = reverse("admin:django_textclass_classificationrequest_dashboard")
    export = reverse("admin:django_textclass_classificationrequest_export")
    assert f'href="{dashboard}?status__exact=failed"' in body
    assert f'href="{export}?status__exact=failed"' in body


def test_app_index__links_to_the_dashboard(admin_client, db):
    body = admin_client.get(reverse("admin:app_list", args=["django_textclass"])).content.decode()

    assert reverse("admin:django_textclass_classificationrequest_dashboard") in body
    assert "Label distributions" in body
