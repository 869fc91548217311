"""The API over a real socket, with a real Celery worker behind it.

``live_server`` serves the test database on a real port; the ``worker`` fixture runs a
real Celery worker process that classifies through the loopback Inference API
emulator, whose answers follow :func:`django_textclass.testing.scoring.rank`. The
clients are the real ones: ``requests`` posting the seed's payload, and
``huggingface_hub.InferenceClient`` with this site's URL as its model.
"""

import threading
import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from rest_framework.authtoken.models import Token

from django_textclass import services
from django_textclass.models import ClassificationRequest, Status
from django_textclass.testing.emulator import Reply
from django_textclass.testing.scoring import rank
from tests.api.helpers import MODEL, stored
from tests.helpers import wait_for

pytestmark = pytest.mark.integration
SENTIMENT = ["POSITIVE", "NEGATIVE"]


@pytest.fixture
def token(worker, alice):
    return Token.objects.create(user=alice).key


@pytest.fixture
def endpoint(live_server):
    return f"{live_server.url}/api/models/{MODEL}"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# --- the drop-in endpoint ------------------------------------------------------------------


def test_seed_request__answers_the_api_shape(endpoint, token, alice):
    response = requests.post(
        endpoint, headers=bearer(token), json={"inputs": "I like you. I love you"}, timeout=30
    )

    assert response.status_code == 200, response.text
    assert response.json() == [rank(SENTIMENT, "I like you. I love you")]
    assert response.json()[0][0]["label"] == "POSITIVE"
    row = ClassificationRequest.objects.get()
    assert (row.owner, row.status) == (alice, Status.SUCCEEDED)
    assert response.headers["X-Textclass-Requests"] == str(row.uuid)


def test_list_with_parameters__one_ranking_per_input(endpoint, token):
    texts = ["I love it", "I hate it", "not bad"]

    response = requests.post(
        endpoint,
        headers=bearer(token),
        timeout=30,
        json={
            "inputs": texts,
            "parameters": {"function_to_apply": "sigmoid", "top_k": 1},
        },
    )

    assert response.status_code == 200, response.text
    assert response.json() == [rank(SENTIMENT, text, "sigmoid", 1) for text in texts]


def test_huggingface_hub_client__text_classification(endpoint, token):
    client = InferenceClient(model=endpoint, token=token)

    output = client.text_classification("I like you. I love you")

    expected = rank(SENTIMENT, "I like you. I love you")
    assert [(item.label, item.score) for item in output] == [
        (item["label"], item["score"]) for item in expected
    ]
    assert type(output[0]).__name__ == "TextClassificationOutputElement"


def test_huggingface_hub_client__parameters(endpoint, token):
    client = InferenceClient(model=endpoint, token=token)

    output = client.text_classification("terrible", top_k=1, function_to_apply="sigmoid")

    assert [(item.label, item.score) for item in output] == [
        (item["label"], item["score"]) for item in rank(SENTIMENT, "terrible", "sigmoid", 1)
    ]


def test_huggingface_hub_client__bad_token_raises_401(endpoint, worker):
    client = InferenceClient(model=endpoint, token="hf_wrong")

    with pytest.raises(HfHubHTTPError) as caught:
        client.text_classification("hello")

    assert caught.value.response.status_code == 401


def test_not_ready_in_time__503_then_same_request_with_wait_for_model(
    endpoint, token, emulator, settings
):
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "INFERENCE_WAIT_SECONDS": 0.3,
        "INFERENCE_WAIT_FOR_MODEL_SECONDS": 20,
    }
    emulator.script(Reply.loading(estimated_time=1.0))

    first = requests.post(endpoint, headers=bearer(token), json={"inputs": "slow one"}, timeout=30)

    assert first.status_code == 503
    assert set(first.json()) == {"error", "estimated_time"}
    assert "is currently loading" in first.json()["error"]
    second = requests.post(
        endpoint,
        headers={**bearer(token), "x-wait-for-model": "true"},
        json={"inputs": "slow one"},
        timeout=30,
    )
    assert second.status_code == 200, second.text
    assert second.json() == [rank(SENTIMENT, "slow one")]
    assert second.headers["X-Textclass-Requests"] == first.headers["X-Textclass-Requests"]
    assert ClassificationRequest.objects.count() == 1


def test_no_cache_header__reaches_the_upstream_api(endpoint, token, emulator):
    requests.post(endpoint, headers=bearer(token), json={"inputs": "fresh"}, timeout=30)

    response = requests.post(
        endpoint,
        headers={**bearer(token), "x-use-cache": "false"},
        json={"inputs": "fresh"},
        timeout=30,
    )

    assert response.status_code == 200
    assert emulator.texts_seen() == ["fresh", "fresh"]
    assert emulator.requests[1].headers["x-use-cache"] == "false"


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (Reply.error(401, "Invalid credentials in Authorization header"), 502, "http_401"),
        (Reply.error(400, "bad input"), 400, "http_400"),
    ],
)
def test_upstream_failure__error_body(endpoint, token, emulator, reply, status, code):
    emulator.script(reply)

    response = requests.post(endpoint, headers=bearer(token), json={"inputs": "x"}, timeout=30)

    assert response.status_code == status
    assert response.json()["error"].startswith(f"Classification failed ({code})")
    assert "hf_test_token_not_secret" not in response.text


def test_cancelled_while_waiting__409(live_server, transactional_db, alice):
    key = Token.objects.create(user=alice).key
    # Pending but not due, so no worker claims it; the call attaches to it and waits.
    row = stored(alice, text="stuck", next_attempt_at=timezone.now() + timedelta(hours=1))
    timer = threading.Timer(0.5, services.cancel, args=[row])
    timer.start()

    response = requests.post(
        f"{live_server.url}/api/models/{MODEL}",
        headers=bearer(key),
        json={"inputs": "stuck"},
        timeout=30,
    )
    timer.join()

    assert response.status_code == 409
    assert response.json() == {"error": "The request was cancelled."}


# --- the REST endpoints with a worker ----------------------------------------------------


def rest(live_server, token):
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    return session, f"{live_server.url}/api/classifications/"


def test_submit_with_wait__200_with_the_result(live_server, token):
    session, url = rest(live_server, token)

    response = session.post(url, json={"text": "What a lovely day", "wait": 20}, timeout=30)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["result"] == rank(SENTIMENT, "What a lovely day")
    assert body["attempts"] == 1 and body["duration_ms"] is not None
    # The status URL shows the same request, and its waits and retries (none here).
    assert session.get(response.headers["Location"], timeout=10).json() == {**body, "events": []}


def test_submit_batch_with_wait__200_all_final(live_server, token):
    session, url = rest(live_server, token)
    texts = ["good", "bad", "meh"]

    response = session.post(url, json={"texts": texts, "wait": 20}, timeout=30)

    assert response.status_code == 200, response.text
    assert [item["result"] for item in response.json()["results"]] == [
        rank(SENTIMENT, text) for text in texts
    ]


def test_wait_too_short__202_then_poll_the_status_url(live_server, token, emulator):
    emulator.latency = 1.0
    session, url = rest(live_server, token)

    response = session.post(url, json={"text": "patience", "wait": 0.2}, timeout=30)

    assert response.status_code == 202
    status_url = response.headers["Location"]
    final = wait_for(
        lambda: (
            (body := session.get(status_url, timeout=10).json())["status"] == "succeeded" and body
        ),
        message="the request to succeed",
    )
    assert final["result"] == rank(SENTIMENT, "patience")


def test_retry_after_failure__succeeds(live_server, token, emulator):
    emulator.script(Reply.error(401, "Invalid credentials in Authorization header"))
    session, url = rest(live_server, token)
    failed = session.post(url, json={"text": "second chance", "wait": 20}, timeout=30).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "http_401"

    response = session.post(f"{failed['url']}retry/", timeout=30)

    assert response.status_code == 202
    final = wait_for(
        lambda: (
            (body := session.get(failed["url"], timeout=10).json())["status"] == "succeeded"
            and body
        ),
        message="the retried request to succeed",
    )
    assert final["error"] is None and final["attempts"] == 1


def test_stats_after_real_classifications(live_server, token):
    session, url = rest(live_server, token)
    session.post(url, json={"texts": ["love", "hate", "love it"], "wait": 20}, timeout=30)

    body = session.get(f"{live_server.url}/api/stats/", timeout=10).json()

    assert body["status_counts"]["succeeded"] == 3
    assert {row["label"]: row["count"] for row in body["label_distribution"]} == {
        "POSITIVE": 2,
        "NEGATIVE": 1,
    }
    assert body["backend_ms"]["p50"] is not None


def test_wait_returns_as_soon_as_ready(live_server, token):
    session, url = rest(live_server, token)
    started = time.monotonic()

    response = session.post(url, json={"text": "quick", "wait": 30}, timeout=40)

    assert response.status_code == 200
    assert time.monotonic() - started < 15
