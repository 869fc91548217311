"""POST /api/models/{model_id} without a worker: authentication, validation, 503, reuse.

The answers with a real worker behind them are in ``test_inference_live.py``.
"""

import asyncio
import json

import pytest
from django.test import AsyncClient
from rest_framework.authtoken.models import Token

from django_textclass.models import ClassificationRequest
from django_textclass.services import waiting
from tests.api.helpers import MODEL, client_for

pytestmark = pytest.mark.django_db
URL = f"/api/models/{MODEL}"


@pytest.fixture
def bearer(alice):
    """Alice's client, authenticating the way the Inference API's clients do."""
    client = client_for(None)
    token, _ = Token.objects.get_or_create(user=alice)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


def call(client, body, url=URL, **headers):
    return client.post(url, body, format="json", **headers)


def test_not_ready__503_with_estimated_time_and_rows_stored(bearer, alice):
    # Inside the test transaction no worker can answer: the endpoint says "loading".
    response = call(bearer, {"inputs": "I like you. I love you"})

    assert response.status_code == 503
    body = response.json()
    assert body == {"error": f"Model {MODEL} is currently loading", "estimated_time": 1.0}
    assert response.headers["Retry-After"] == "1"
    row = ClassificationRequest.objects.get()
    assert (row.owner, row.model_id, row.text) == (alice, MODEL, "I like you. I love you")
    assert response.headers["X-Textclass-Requests"] == str(row.uuid)


def test_estimated_time__follows_the_scheduled_retry(bearer, alice):
    from datetime import timedelta

    from django.utils import timezone

    call(bearer, {"inputs": "later"})
    ClassificationRequest.objects.update(
        next_attempt_at=timezone.now() + timedelta(seconds=20), error_code="model_loading"
    )

    body = call(bearer, {"inputs": "later"}).json()

    assert 18 <= body["estimated_time"] <= 20


def test_same_inputs_again__waits_for_the_same_requests(bearer):
    first = call(bearer, {"inputs": ["a", "b"]})
    again = call(bearer, {"inputs": ["b", "a", "c"]})

    first_ids = first.headers["X-Textclass-Requests"].split(",")
    again_ids = again.headers["X-Textclass-Requests"].split(",")
    assert again_ids[:2] == [first_ids[1], first_ids[0]]
    assert again_ids[2] not in first_ids
    assert ClassificationRequest.objects.count() == 3


def test_no_cache_header__always_new_requests(bearer):
    call(bearer, {"inputs": "a"})
    call(bearer, {"inputs": "a"}, HTTP_X_USE_CACHE="false")

    rows = ClassificationRequest.objects.order_by("created_at", "pk")
    assert [row.use_cache for row in rows] == [True, False]


def test_different_parameters__not_reused(bearer):
    call(bearer, {"inputs": "a"})
    call(bearer, {"inputs": "a", "parameters": {"top_k": 1}})

    assert ClassificationRequest.objects.count() == 2


def test_other_users_in_flight_request__not_reused(bearer, bob):
    call(bearer, {"inputs": "a"})
    bob_token = Token.objects.create(user=bob)
    other = client_for(None)
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {bob_token.key}")

    call(other, {"inputs": "a"})

    assert ClassificationRequest.objects.filter(owner=bob).count() == 1


# --- authentication ----------------------------------------------------------------------


def test_no_token__401_bearer_challenge_and_error_body():
    response = call(client_for(None), {"inputs": "hi"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"error": "Authentication credentials were not provided."}
    assert not ClassificationRequest.objects.exists()


def test_wrong_token__401():
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Bearer hf_not_a_token_here")

    response = call(client, {"inputs": "hi"})

    assert response.status_code == 401
    assert response.json() == {"error": "Invalid token."}


def test_drf_token_keyword_and_session__also_accepted(api, alice):
    assert call(api, {"inputs": "hi"}).status_code == 503  # "Token <key>"
    session = client_for(None)
    session.force_login(alice)
    assert call(session, {"inputs": "hi"}).status_code == 503


# --- validation: 400 {"error": ...}, nothing stored --------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "inputs: This field is required."),
        ({"inputs": ""}, "inputs: Must not be empty or only whitespace."),
        ({"inputs": "  "}, "inputs: Must not be empty or only whitespace."),
        ({"inputs": 12}, "inputs: Must be a string or a list of strings."),
        ({"inputs": None}, "inputs: This field may not be null."),
        ({"inputs": []}, "inputs: Must not be an empty list."),
        ({"inputs": ["a"] * 4}, "inputs: Has 4 items; the maximum is 3."),
        ({"inputs": ["ok", 5]}, "inputs: 1: Must be a string."),
        ({"inputs": "x" * 101}, "inputs: Is 101 characters long; the maximum is 100."),
        ({"inputs": "a\x00b"}, "inputs: Must not contain NUL characters."),
        (
            {"inputs": "a", "parameters": {"function_to_apply": "tanh"}},
            'parameters: function_to_apply: "tanh" is not a valid choice.',
        ),
        (
            {"inputs": "a", "parameters": {"top_k": 0}},
            "parameters: top_k: Ensure this value is greater than or equal to 1.",
        ),
        (
            {"inputs": "a", "parameters": {"top_k": "2"}},
            "parameters: top_k: A valid integer is required.",
        ),
        (
            {"inputs": "a", "options": {"wait_for_model": "yes"}},
            "options: wait_for_model: Must be a valid boolean.",
        ),
        ({"inputs": "a", "extra": 1}, "extra: Unknown field."),
    ],
)
def test_invalid_body__400_error_and_nothing_stored(bearer, settings, body, words):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MAX_TEXT_LENGTH": 100, "API_MAX_BATCH": 3}

    response = call(bearer, body)

    assert response.status_code == 400
    assert response.json() == {"error": words}
    assert not ClassificationRequest.objects.exists()


@pytest.mark.parametrize(
    "model",
    [
        "../admin",
        "org/../../admin",
        "org/name/extra",
        "has space/model",
        "https:/evil.example/model",
        "-leading/dash",
        "org/",
        "a" * 97,
    ],
)
def test_invalid_model_id__400_error(bearer, model):
    response = call(bearer, {"inputs": "hi"}, url=f"/api/models/{model}")

    assert response.status_code == 400
    assert response.json()["error"].startswith("model_id: Not a valid Hugging Face repository id")
    assert not ClassificationRequest.objects.exists()


def test_single_part_model_id__accepted(bearer):
    assert call(bearer, {"inputs": "hi"}, url="/api/models/gpt2").status_code == 503
    assert ClassificationRequest.objects.get().model_id == "gpt2"


@pytest.mark.parametrize("header", ["HTTP_X_USE_CACHE", "HTTP_X_WAIT_FOR_MODEL"])
def test_bad_flag_header__400(bearer, header):
    response = call(bearer, {"inputs": "hi"}, **{header: "maybe"})

    assert response.status_code == 400
    assert "Must be true or false" in response.json()["error"]


def test_body_over_limit__413_error(bearer, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": 100}

    response = call(bearer, {"inputs": "x" * 200})

    assert response.status_code == 413
    assert response.json() == {"error": "The request body is larger than 100 bytes."}
    assert not ClassificationRequest.objects.exists()


def test_body_over_djangos_upload_limit__413_error_not_html(bearer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": 150}

    response = call(bearer, {"inputs": "x" * 200})

    assert response.status_code == 413
    assert response.json() == {"error": "The request body is larger than 150 bytes."}
    assert not ClassificationRequest.objects.exists()


def test_nested_100000_deep__400_error(bearer):
    body = "{" + '"a": {' * 100_000 + "}" * 100_001

    response = bearer.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "error": "JSON parse error - arrays and objects nested deeper than 32 levels"
    }


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"inputs": "a", "\\ud800": 1}', "\\ud800: Unknown field."),
        (
            '{"inputs": "a", "parameters": {"function_to_apply": "\\ud800"}}',
            'parameters: function_to_apply: "\\ud800" is not a valid choice.',
        ),
        ('{"inputs": "a\\udc00"}', "inputs: Must not contain lone surrogates (U+D800 to U+DFFF)."),
    ],
)
def test_lone_surrogate__400_error_escaped(bearer, body, words):
    response = bearer.generic("POST", URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"error": words}
    assert not ClassificationRequest.objects.exists()


@pytest.mark.parametrize("header", ["Bearer ab\x00cd", "Token ab\x00cd", "Bearer \ud800"])
def test_unusable_token__401_like_a_wrong_token(header):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=header)

    response = call(client, {"inputs": "hi"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Invalid Authorization header" in response.json()["error"]
    assert not ClassificationRequest.objects.exists()


def test_malformed_json__400_error(bearer):
    response = bearer.generic("POST", URL, "{", content_type="application/json")

    assert response.status_code == 400
    assert json.loads(response.content)["error"].startswith("JSON parse error")


def test_get__405_error(bearer):
    response = bearer.get(URL)

    assert response.status_code == 405
    assert response.json() == {"error": 'Method "GET" not allowed.'}


def test_model_id_with_newline__400_json_not_html_404(bearer):
    response = call(bearer, {"inputs": "hi"}, url="/api/models/org/na%0Ame")

    assert response.status_code == 400
    assert response.json()["error"].startswith("model_id:")


# --- served as ASGI: the wait is a coroutine --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_asgi__not_ready_in_time__503_after_the_wait(alice, settings):
    """Under ASGI the view awaits the worker; with none running, the wait ends in a 503."""
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "INFERENCE_WAIT_SECONDS": 0.3,
        "API_WAIT_POLL_SECONDS": 0.05,
    }
    key = Token.objects.create(user=alice).key

    async def post():
        client = AsyncClient(raise_request_exception=True)
        return await client.post(
            URL,
            {"inputs": "nobody classifies this"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )

    response = asyncio.run(post())

    assert response.status_code == 503, response.content
    assert json.loads(response.content)["error"] == f"Model {MODEL} is currently loading"
    row = ClassificationRequest.objects.get()
    assert response.headers["X-Textclass-Requests"] == str(row.uuid)
    waiting.stop_listening()


@pytest.mark.django_db(transaction=True)
def test_asgi__bad_body__400_without_waiting(alice):
    key = Token.objects.create(user=alice).key

    async def post():
        return await AsyncClient().post(
            URL,
            {"inputs": []},
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )

    response = asyncio.run(post())

    assert response.status_code == 400
    assert "inputs" in json.loads(response.content)["error"]
    assert not ClassificationRequest.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_asgi__body_over_the_limit__the_apis_413(alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": 150}
    key = Token.objects.create(user=alice).key

    async def post():
        return await AsyncClient().post(
            URL,
            {"inputs": "x" * 200},
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )

    response = asyncio.run(post())

    assert response.status_code == 413
    assert json.loads(response.content) == {"error": "The request body is larger than 150 bytes."}
    assert not ClassificationRequest.objects.exists()
