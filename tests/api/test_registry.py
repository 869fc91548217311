"""Keys of the model registry in the REST API: submitting, the drop-in route, reading, filtering.

No worker: the rows are read back as stored (the drop-in answers 503 inside a test's
transaction, with the ids of the requests it stored).
"""

import pytest
from rest_framework.authtoken.models import Token

from django_textclass.models import ClassificationRequest
from tests.api.helpers import LIST_URL, MODEL, client_for, detail_url, stored
from tests.fakes import textclass_settings

pytestmark = pytest.mark.django_db

MODELS = {
    "sentiment": {"MODEL": MODEL, "REVISION": "714eb0f", "PARAMETERS": {"top_k": 2}},
    "toxicity": {"MODEL": "unitary/toxic-bert", "BACKEND": "offline"},
}


@pytest.fixture(autouse=True)
def registry():
    with textclass_settings(MODELS=MODELS):
        yield


def post(client, body):
    return client.post(LIST_URL, body, format="json")


def test_submit_with_a_key__stored_and_shown_with_key_revision_and_model(api):
    response = post(api, {"text": "I like you", "model": "sentiment"})

    assert response.status_code == 202
    body = response.json()
    assert (body["key"], body["revision"], body["model"]) == ("sentiment", "714eb0f", MODEL)
    assert body["parameters"] == {"function_to_apply": None, "top_k": 2}
    row = ClassificationRequest.objects.get()
    assert (row.model_key, row.revision, row.backend) == ("sentiment", "714eb0f", "default")


def test_submit_with_a_key__parameters_given_win_over_its_defaults(api):
    body = post(api, {"text": "hi", "model": "sentiment", "parameters": {"top_k": 1}}).json()

    assert body["parameters"]["top_k"] == 1


def test_submit_with_a_key__its_own_backend(api):
    post(api, {"text": "hi", "model": "toxicity"})

    assert ClassificationRequest.objects.get().backend == "offline"


def test_submit_with_a_model_id__key_and_revision_are_null(api):
    body = post(api, {"text": "hi", "model": MODEL}).json()

    assert (body["key"], body["revision"]) == (None, None)


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("https://abc.endpoints.huggingface.cloud/", "neither a model key"),
        ("../x", "neither a model key"),
        # With a registry a name without "/" is a key: a misspelt one is not sent as a model id.
        ("sentimnet", "not a model key of TEXTCLASS['MODELS'] (configured: sentiment, toxicity)"),
        ("Sentiment", "a Hub model id is written owner/name"),
    ],
)
def test_submit__neither_key_nor_hub_id__400_naming_the_field(api, model, words):
    response = post(api, {"text": "hi", "model": model})

    assert response.status_code == 400
    assert words.lower() in response.json()["model"][0].lower()
    assert ClassificationRequest.objects.count() == 0


def test_history__filter_by_key(api, alice):
    keyed = stored(alice, model_key="sentiment", revision="714eb0f")
    stored(alice, model_key="toxicity")
    stored(alice)

    response = api.get(LIST_URL, {"key": "sentiment"})

    assert [item["id"] for item in response.json()["results"]] == [str(keyed.uuid)]
    detail = api.get(detail_url(keyed)).json()
    assert (detail["key"], detail["revision"]) == ("sentiment", "714eb0f")


def test_history__filter_by_a_key_no_longer_configured_still_finds_its_rows(api, alice):
    old = stored(alice, model_key="retired")

    response = api.get(LIST_URL, {"key": "retired"})

    assert [item["id"] for item in response.json()["results"]] == [str(old.uuid)]


# --- the drop-in route: POST /api/models/{key} ---------------------------------------------


@pytest.fixture
def bearer(alice):
    client = client_for(None)
    token, _ = Token.objects.get_or_create(user=alice)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return client


def test_drop_in__a_key_in_place_of_the_model_id(bearer):
    response = bearer.post("/api/models/sentiment", {"inputs": ["good", "bad"]}, format="json")

    assert response.status_code == 503  # no worker inside the test's transaction
    assert response.json()["error"] == "Model sentiment is currently loading"
    rows = ClassificationRequest.objects.order_by("pk")
    assert response.headers["X-Textclass-Requests"] == ",".join(str(r.uuid) for r in rows)
    assert {(r.model_key, r.model_id, r.revision, r.top_k) for r in rows} == {
        ("sentiment", MODEL, "714eb0f", 2)
    }


def test_drop_in__a_call_again_waits_for_the_same_keyed_requests(bearer):
    first = bearer.post("/api/models/sentiment", {"inputs": "good"}, format="json")
    again = bearer.post("/api/models/sentiment", {"inputs": "good"}, format="json")

    assert first.headers["X-Textclass-Requests"] == again.headers["X-Textclass-Requests"]
    assert ClassificationRequest.objects.count() == 1


def test_drop_in__the_key_and_its_model_id_are_different_requests(bearer):
    bearer.post("/api/models/sentiment", {"inputs": "good"}, format="json")
    bearer.post(f"/api/models/{MODEL}", {"inputs": "good"}, format="json")

    assert sorted(ClassificationRequest.objects.values_list("model_key", flat=True)) == [
        "",
        "sentiment",
    ]


def test_drop_in__an_unknown_name__400_in_the_api_s_shape(bearer):
    response = bearer.post("/api/models/Not a key", {"inputs": "good"}, format="json")

    assert response.status_code == 400
    assert "neither a model key" in response.json()["error"].lower()
