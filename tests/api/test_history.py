"""GET /api/classifications/{id}/ and the history list: owner scoping, filters, cursor."""

import base64
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from django_textclass.models import RequestEvent, Status
from tests.api.helpers import LIST_URL, detail_url, stored

pytestmark = pytest.mark.django_db


def ids(response):
    return [item["id"] for item in response.json()["results"]]


# --- retrieve -----------------------------------------------------------------------------


def test_retrieve_succeeded__result_best_first_and_timings(api, alice):
    row = stored(alice, status=Status.SUCCEEDED, labels=[("POSITIVE", 0.97), ("NEGATIVE", 0.03)])

    response = api.get(detail_url(row))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(row.uuid)
    assert body["status"] == "succeeded"
    assert body["result"] == [
        {"label": "POSITIVE", "score": 0.97},
        {"label": "NEGATIVE", "score": 0.03},
    ]
    assert (body["top_label"], body["top_score"]) == ("POSITIVE", 0.97)
    assert body["duration_ms"] == 350 and body["latency_ms"] == 400
    assert body["backend_ms"] == 300 and body["attempts"] == 1
    assert body["error"] is None and body["cached"] is False
    assert body["next_attempt_at"] is None


def test_retrieve_failed__error_code_and_message(api, alice):
    row = stored(alice, status=Status.FAILED, error_code="http_401")

    body = api.get(detail_url(row)).json()

    assert body["error"] == {"code": "http_401", "message": "failed with http_401"}
    assert body["result"] is None


def test_retrieve_pending__no_result_and_next_attempt(api, alice):
    row = stored(alice)

    body = api.get(detail_url(row)).json()

    assert body["status"] == "pending" and body["result"] is None
    assert body["next_attempt_at"] is not None
    assert body["duration_ms"] is None


def test_retrieve_source__type_id_and_field(api, alice):
    content_type = ContentType.objects.get_for_model(alice)
    row = stored(alice, content_type=content_type, object_id=str(alice.pk), source_field="username")

    assert api.get(detail_url(row)).json()["source"] == {
        "type": "auth.user",
        "id": str(alice.pk),
        "field": "username",
    }


def test_retrieve_other_users_request__404_without_data(bob_api, alice):
    row = stored(alice, text="alice's secret")

    response = bob_api.get(detail_url(row))

    assert response.status_code == 404
    assert response.json() == {"detail": "No such classification request."}
    assert "secret" not in response.content.decode()


def test_retrieve_staff__sees_any_request(staff_api, alice):
    row = stored(alice)

    response = staff_api.get(detail_url(row))

    assert response.status_code == 200
    assert response.json()["owner"] == "alice"


def test_retrieve_staff_without_see_all__404(staff_api, alice, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_STAFF_SEES_ALL": False}

    assert staff_api.get(detail_url(stored(alice))).status_code == 404


@pytest.mark.parametrize("bad", ["not-a-uuid", "1", "00000000-0000-0000-0000-000000000000"])
def test_retrieve_unknown_or_malformed_id__404_json(api, bad):
    response = api.get(f"{LIST_URL}{bad}/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such classification request."}


def test_retrieve_ignores_list_filters(api, alice):
    row = stored(alice)

    assert api.get(detail_url(row), {"status": "bogus"}).status_code == 200
    assert api.get(detail_url(row), {"status": "failed"}).status_code == 200


def test_retrieve_numeric_pk__never_an_id(api, alice):
    row = stored(alice)

    assert api.get(f"{LIST_URL}{row.pk}/").status_code == 404


def test_detail__read_only(api, alice):
    row = stored(alice)

    for method in ("put", "patch", "delete"):
        response = getattr(api, method)(detail_url(row), {"status": "succeeded"}, format="json")
        assert response.status_code == 405
    row.refresh_from_db()
    assert row.status == Status.PENDING


# --- list ----------------------------------------------------------------------------------


def test_list__only_own_requests_newest_first(api, alice, bob):
    old = stored(alice, created_at=timezone.now() - timedelta(hours=1))
    new = stored(alice)
    stored(bob)

    response = api.get(LIST_URL)

    assert response.status_code == 200
    assert ids(response) == [str(new.uuid), str(old.uuid)]


def test_list_staff__everyones(staff_api, alice, bob):
    stored(alice)
    stored(bob)

    assert len(ids(staff_api.get(LIST_URL))) == 2


def test_list_filter_status__one_or_several(api, alice):
    pending = stored(alice)
    failed = stored(alice, status=Status.FAILED, error_code="timeout")
    stored(alice, status=Status.SUCCEEDED)

    assert ids(api.get(LIST_URL, {"status": "pending"})) == [str(pending.uuid)]
    assert set(ids(api.get(LIST_URL, {"status": "pending,failed"}))) == {
        str(pending.uuid),
        str(failed.uuid),
    }


def test_list_filter_model_and_label(api, alice):
    wanted = stored(
        alice, status=Status.SUCCEEDED, model="org/toxic", labels=[("toxic", 0.8), ("neutral", 0.2)]
    )
    stored(
        alice, status=Status.SUCCEEDED, model="org/toxic", labels=[("neutral", 0.7), ("toxic", 0.3)]
    )
    stored(alice, status=Status.SUCCEEDED)

    assert len(ids(api.get(LIST_URL, {"model": "org/toxic"}))) == 2
    assert ids(api.get(LIST_URL, {"model": "org/toxic", "label": "toxic"})) == [str(wanted.uuid)]


def test_list_filter_created_range__after_inclusive_before_exclusive(api, alice):
    now = timezone.now().replace(microsecond=0)
    rows = [stored(alice, created_at=now - timedelta(days=days)) for days in (3, 2, 1)]

    response = api.get(
        LIST_URL,
        {
            "created_after": (now - timedelta(days=2)).isoformat(),
            "created_before": (now - timedelta(days=1)).isoformat(),
        },
    )

    assert ids(response) == [str(rows[1].uuid)]


def test_list_filter_source_object(api, alice, bob):
    user_type = ContentType.objects.get_for_model(alice)
    about_alice = stored(alice, content_type=user_type, object_id=str(alice.pk))
    stored(alice, content_type=user_type, object_id=str(bob.pk))
    stored(alice)

    assert len(ids(api.get(LIST_URL, {"source_type": "auth.user"}))) == 2
    assert ids(api.get(LIST_URL, {"source_type": "auth.user", "source_id": alice.pk})) == [
        str(about_alice.uuid)
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"status": ","}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        (
            {"created_after": "2026-01-02T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
            "created_before",
        ),
        ({"source_type": "nope.nothing"}, "source_type"),
        ({"created_after": "0001-01-01T00:00:00+05:00"}, "created_after"),
        ({"source_id": "3"}, "source_type"),
    ],
)
def test_list_bad_filter__400_names_the_parameter(api, query, field):
    response = api.get(LIST_URL, query)

    assert response.status_code == 400
    assert field in response.json()


def test_list_cursor__pages_cover_everything_once(api, alice, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_PAGE_SIZE": 2}
    now = timezone.now()
    rows = [stored(alice, created_at=now - timedelta(seconds=i)) for i in range(5)]

    seen, url, pages = [], LIST_URL, 0
    while url:
        body = api.get(url).json()
        assert len(body["results"]) <= 2
        seen += [item["id"] for item in body["results"]]
        url, pages = body["next"], pages + 1

    assert seen == [str(row.uuid) for row in rows]
    assert pages == 3


def test_list_page_size__capped_at_the_maximum(api, alice, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_PAGE_SIZE": 1, "API_MAX_PAGE_SIZE": 3}
    for _ in range(5):
        stored(alice)

    assert len(ids(api.get(LIST_URL, {"page_size": 2}))) == 2
    assert len(ids(api.get(LIST_URL, {"page_size": 1000}))) == 3
    assert len(ids(api.get(LIST_URL, {"page_size": "many"}))) == 1


def test_list_bad_cursor__404(api):
    response = api.get(LIST_URL, {"cursor": "garbage"})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


@pytest.mark.parametrize(
    "position",
    [
        "notadate",
        "2026",
        "\x00",
        "9999-99-99",
        "9" * 30,
        "9999-12-31 23:59:59-23:59",
    ],
)
def test_list_forged_cursor_position__404_not_500(api, alice, position):
    # A cursor is base64 the client can write: its position reached the queryset's filter.
    stored(alice)
    cursor = base64.b64encode(f"p={position}".encode()).decode()

    response = api.get(LIST_URL, {"cursor": cursor})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


def test_list_anonymous__refused():
    from tests.api.helpers import client_for

    assert client_for(None).get(LIST_URL).status_code == 403


def test_detail__shows_the_waits_and_retries_the_list_does_not(api, alice):
    row = stored(alice, status=Status.PENDING)
    RequestEvent.objects.create(
        request=row,
        kind="wait",
        reason="rate_limited",
        attempts=0,
        wait_seconds=4.0,
        message="HTTP 429 from https://api",
    )
    RequestEvent.objects.create(
        request=row,
        kind="retry",
        reason="http_500",
        attempts=1,
        wait_seconds=1.5,
        message="HTTP 500 from https://api",
    )

    detail = api.get(detail_url(row)).json()
    listed = api.get(LIST_URL).json()["results"][0]

    assert [(e["kind"], e["reason"], e["attempts"]) for e in detail["events"]] == [
        ("wait", "rate_limited", 0),
        ("retry", "http_500", 1),
    ]
    assert detail["events"][0]["wait_seconds"] == 4.0
    assert "events" not in listed
