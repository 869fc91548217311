"""POST /api/classifications/: what is stored, what is answered, what is refused."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_textclass.models import ClassificationRequest
from tests.api.helpers import LIST_URL, MODEL, client_for

pytestmark = pytest.mark.django_db


def post(client, body, **extra):
    return client.post(LIST_URL, body, format="json", **extra)


def test_submit_one__202_with_location_and_stored_row(api, alice):
    response = post(api, {"text": "I like you. I love you", "model": MODEL})

    assert response.status_code == 202
    body = response.json()
    row = ClassificationRequest.objects.get()
    assert body["id"] == str(row.uuid)
    assert body["status"] == "pending"
    assert body["url"].endswith(f"/api/classifications/{row.uuid}/")
    assert response.headers["Location"] == body["url"]
    assert body["result"] is None and body["owner"] == "alice"
    assert (row.owner, row.model_id, row.text) == (alice, MODEL, "I like you. I love you")


def test_submit_one__text_stored_exactly_as_sent(api):
    post(api, {"text": "  spaced out\n"})

    assert ClassificationRequest.objects.get().text == "  spaced out\n"


def test_submit_defaults__default_model_and_parameters(api, settings):
    post(api, {"text": "hello"})

    row = ClassificationRequest.objects.get()
    assert row.model_id == MODEL
    assert (row.function_to_apply, row.top_k, row.use_cache) == ("", None, True)


def test_submit_parameters__stored(api):
    response = post(
        api,
        {
            "text": "hello",
            "parameters": {"function_to_apply": "sigmoid", "top_k": 2},
            "use_cache": False,
        },
    )

    assert response.json()["parameters"] == {"function_to_apply": "sigmoid", "top_k": 2}
    row = ClassificationRequest.objects.get()
    assert (row.function_to_apply, row.top_k, row.use_cache) == ("sigmoid", 2, False)


def test_submit_batch__202_results_in_order(api):
    texts = ["I love it", "I hate it", "meh"]

    response = post(api, {"texts": texts})

    assert response.status_code == 202
    results = response.json()["results"]
    assert [item["text"] for item in results] == texts
    assert all(item["status"] == "pending" for item in results)
    assert "Location" not in response.headers
    assert ClassificationRequest.objects.count() == 3


def test_submit_batch__at_the_maximum_is_accepted(api, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BATCH": 3}

    assert post(api, {"texts": ["a", "b", "c"]}).status_code == 202


def test_submit_one__two_statements_the_token_and_the_insert(api):
    """The stored row is the answer as it is: nothing is read back, no transaction around it."""
    with CaptureQueriesContext(connection) as queries:
        response = post(api, {"text": "hello", "model": MODEL})

    assert response.status_code == 202
    sql = [query["sql"] for query in queries.captured_queries]
    assert len(sql) == 2, sql
    assert "authtoken_token" in sql[0] and sql[1].startswith("INSERT")


def test_submit_one__answer_is_what_reading_the_request_shows(api):
    body = post(api, {"text": "hello", "parameters": {"top_k": 2}, "use_cache": False}).json()

    assert body == api.get(LIST_URL).json()["results"][0]


def test_submit_batch__answer_is_what_reading_the_requests_shows(api):
    results = post(api, {"texts": ["one", "two"]}).json()["results"]

    read = {item["id"]: item for item in api.get(LIST_URL).json()["results"]}
    assert results == [read[item["id"]] for item in results]


def test_submit__wait_without_a_worker_still_answers_202(api):
    # Inside the test's transaction nothing is committed, so no worker could answer:
    # the view must not sit out the wait.
    response = post(api, {"text": "hello", "wait": 30})

    assert response.status_code == 202


# --- validation: 400 per field, nothing stored -------------------------------------------

LONG = "x" * 101


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({}, "text", "required"),
        ({"text": ""}, "text", "empty"),
        ({"text": "   \n\t"}, "text", "whitespace"),
        ({"text": 5}, "text", "string"),
        ({"text": None}, "text", "null"),
        ({"text": ["a"]}, "text", "string"),
        ({"text": LONG}, "text", "maximum is 100"),
        ({"text": "nul\x00byte"}, "text", "NUL"),
        ({"texts": []}, "texts", "empty"),
        ({"texts": "a"}, "texts", "list"),
        ({"texts": ["a"] * 4}, "texts", "no more than 3"),
        ({"text": "a", "texts": ["b"]}, "texts", "not both"),
        ({"text": "a", "colour": "red"}, "colour", "Unknown field"),
        ({"text": "a", "parameters": {"function_to_apply": "relu"}}, "parameters", "valid choice"),
        ({"text": "a", "parameters": {"top_k": 0}}, "parameters", "greater than or equal to 1"),
        ({"text": "a", "parameters": {"top_k": 1001}}, "parameters", "less than or equal to 1000"),
        ({"text": "a", "parameters": {"top_k": "3"}}, "parameters", "valid integer"),
        ({"text": "a", "parameters": {"top_k": 2.5}}, "parameters", "valid integer"),
        ({"text": "a", "parameters": {"top_k": True}}, "parameters", "valid integer"),
        ({"text": "a", "parameters": {"truncation": True}}, "parameters", "Unknown field"),
        ({"text": "a", "parameters": "sigmoid"}, "parameters", "dictionary"),
        ({"text": "a", "model": "../admin"}, "model", "repository id"),
        ({"text": "a", "model": "https://evil.example/models/x"}, "model", "repository id"),
        ({"text": "a", "model": "owner/my model"}, "model", "repository id"),
        ({"text": "a", "model": "a/b/c"}, "model", "repository id"),
        ({"text": "a", "model": 7}, "model", "string"),
        ({"text": "a", "use_cache": "no"}, "use_cache", "boolean"),
        ({"text": "a", "wait": -1}, "wait", "greater than or equal to 0"),
        ({"text": "a", "wait": "5"}, "wait", "number"),
    ],
)
def test_submit_invalid__400_names_field_and_reason_and_stores_nothing(
    api, settings, body, field, reason
):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MAX_TEXT_LENGTH": 100, "API_MAX_BATCH": 3}

    response = post(api, body)

    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert reason.lower() in json.dumps(errors[field]).lower(), errors
    assert not ClassificationRequest.objects.exists()


def test_submit_invalid_batch_item__error_carries_its_index(api):
    response = post(api, {"texts": ["fine", 3, "also fine"]})

    assert response.json() == {"texts": {"1": ["Must be a string."]}}


def test_submit_lone_surrogate__400(api):
    # JSON may carry a lone surrogate that no database encoding can store.
    response = api.generic(
        "POST", LIST_URL, '{"text": "bad \\ud800 char"}', content_type="application/json"
    )

    assert response.status_code == 400
    assert "text" in response.json()


def test_submit_not_a_json_object__400(api):
    response = api.generic("POST", LIST_URL, '["a", "b"]', content_type="application/json")

    assert response.status_code == 400
    assert not ClassificationRequest.objects.exists()


def test_submit_malformed_json__400(api):
    response = api.generic("POST", LIST_URL, '{"text": ', content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_submit_nan__400(api):
    response = api.generic(
        "POST", LIST_URL, '{"text": "a", "wait": NaN}', content_type="application/json"
    )

    assert response.status_code == 400


def test_submit_nested_100000_deep__400_not_a_recursion_error(api):
    body = "[" * 100_000 + "]" * 100_000

    response = api.generic("POST", LIST_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert "nested deeper than 32 levels" in response.json()["detail"]


def test_submit_nested_past_the_limit_inside_a_field__400(api):
    # 33 levels: the body, "parameters", and 31 lists around top_k's value.
    body = json.dumps({"text": "a", "parameters": {"top_k": "[" * 31 + "1" + "]" * 31}})
    body = body.replace('"[', "[").replace(']"', "]")

    response = api.generic("POST", LIST_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]
    assert not ClassificationRequest.objects.exists()


def test_submit_lone_surrogate_in_an_unknown_field_name__400_names_it_escaped(api):
    response = api.generic(
        "POST", LIST_URL, '{"text": "a", "\\ud800x": 1}', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {"\\ud800x": ["Unknown field."]}


def test_submit_lone_surrogate_in_function_to_apply__400(api):
    body = '{"text": "a", "parameters": {"function_to_apply": "\\udfff"}}'

    response = api.generic("POST", LIST_URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "parameters": {"function_to_apply": ['"\\udfff" is not a valid choice.']}
    }
    assert not ClassificationRequest.objects.exists()


@pytest.mark.parametrize("header", ["Token ab\x00cd", "Token \x00", "Token \ud800"])
def test_submit_unusable_token__refused_like_a_wrong_token(alice, header):
    # A NUL reached the token query, which PostgreSQL refuses outright (a 500 there).
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=header)

    response = post(client, {"text": "hello"})

    assert response.status_code == 403  # what any wrong token gets here (session first)
    assert "Invalid Authorization header" in response.json()["detail"]
    assert not ClassificationRequest.objects.exists()


def test_submit_body_over_djangos_upload_limit__the_apis_413(api, settings):
    # Django's DATA_UPLOAD_MAX_MEMORY_SIZE answered an HTML 400 before the API's parser ran.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": 2000}

    response = post(api, {"text": "x" * 3000})

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 2000 bytes."}
    assert not ClassificationRequest.objects.exists()


def test_submit_api_limit_above_djangos__is_the_limit(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": 5000}

    response = post(api, {"text": "x" * 3000})

    assert response.status_code == 202
    assert len(ClassificationRequest.objects.get().text) == 3000


def test_submit_form_encoded__415(api):
    response = api.post(LIST_URL, {"text": "hello"})  # multipart, not JSON

    assert response.status_code == 415
    assert not ClassificationRequest.objects.exists()


def test_submit_body_over_limit__413_and_nothing_stored(api, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": 1000}

    response = post(api, {"text": "x" * 2000})

    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]
    assert not ClassificationRequest.objects.exists()


def test_submit_body_at_limit__accepted(api, settings):
    body = json.dumps({"text": "x" * 100})
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": len(body)}

    response = api.generic("POST", LIST_URL, body, content_type="application/json")

    assert response.status_code == 202


def test_submit_body_longer_than_declared_length__only_declared_bytes_read(api, settings):
    # A client that under-declares Content-Length cannot make the parser read more: the
    # body is cut at the declared length (here mid-JSON), never read to its end.
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": 50}
    body = json.dumps({"text": "x" * 200}).encode()

    response = api.generic(
        "POST",
        LIST_URL,
        body,
        content_type="application/json",
        CONTENT_LENGTH="40",
    )

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert not ClassificationRequest.objects.exists()


def test_submit_anonymous__refused_and_nothing_stored():
    response = post(client_for(None), {"text": "hello"})

    # DRF answers 403 when the first authentication class (session here) sends no
    # WWW-Authenticate challenge; the drop-in endpoint answers 401 (see its tests).
    assert response.status_code == 403
    assert response.json()["detail"] == "Authentication credentials were not provided."
    assert not ClassificationRequest.objects.exists()


def test_submit_bad_token__refused(alice):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = post(client, {"text": "hello"})

    assert response.status_code == 403
    assert response.json()["detail"] == "Invalid token."
    assert not ClassificationRequest.objects.exists()


def test_submit_session_login__accepted(alice):
    client = client_for(None)
    client.login(username="alice", password="alice-pw")

    assert post(client, {"text": "hello"}).status_code == 202


def test_submit_read_only_fields__refused_not_written(api):
    response = post(api, {"text": "hello", "status": "succeeded", "owner": "bob"})

    assert response.status_code == 400
    assert set(response.json()) == {"owner", "status"}
    assert not ClassificationRequest.objects.exists()


def test_permission_classes__overridable(api, settings):
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "API_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    }

    assert post(api, {"text": "hello"}).status_code == 403
    assert api.get(LIST_URL).status_code == 403


def test_permission_allow_any__anonymous_submits_but_sees_nothing(settings):
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "API_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    }
    anonymous = client_for(None)

    assert post(anonymous, {"text": "hello"}).status_code == 202
    assert ClassificationRequest.objects.get().owner is None
    assert anonymous.get(LIST_URL).json()["results"] == []
