"""The Hugging Face backend in front of a dedicated Inference Endpoint (a fixed URL).

Every label asked for, the scale-up header, a 503 while a replica starts, and the checks
W008 and W009. HTTP is replaced only at the one seam, the session's ``post``.
"""

import pytest

from django_textclass.backends.huggingface import Backend
from django_textclass.exceptions import (
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)
from django_textclass.types import Parameters
from tests.backends.helpers import MODEL, TOKEN, block_network, install_post, make_response

ENDPOINT = "https://uu149rez6gw9ehej.eu-west-1.aws.endpoints.huggingface.cloud/sentiment"
ROUTER = "https://router.huggingface.co/hf-inference/models/{model_id}"
RANKING = [{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    block_network(monkeypatch)


@pytest.fixture
def make_backend():
    built = []

    def build(**options):
        options.setdefault("TOKEN", TOKEN)
        backend = Backend(alias="endpoint", **options)
        built.append(backend)
        return backend

    yield build
    for backend in built:
        backend.close()


def sent(monkeypatch, backend, parameters=None, texts=("I love it",), answer=None):
    """The one request ``backend`` sends for ``texts``."""
    fake = install_post(monkeypatch, backend, make_response(200, json=answer or RANKING))
    backend.classify(list(texts), parameters or Parameters(), model_id=MODEL)
    return fake.call


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (ENDPOINT, True),
        ("http://10.0.0.7:8080/", True),
        (ROUTER, False),
        ("https://router.huggingface.co/hf-inference/models/gpt2", False),
        ("https://api-inference.huggingface.co/models/gpt2", False),
        ("http://127.0.0.1:8080/models/{model_id}", False),
    ],
    ids=["endpoint", "own_host", "router_template", "router_fixed", "retired", "own_template"],
)
def test_is_endpoint__a_fixed_url_off_the_hubs_hosts(make_backend, url, expected):
    assert make_backend(API_URL=url).is_endpoint is expected


# Every label: the Toolkit's pipeline keeps the best one unless top_k is sent.


def test_full_ranking__endpoint_asks_for_every_label_with_a_null_top_k(monkeypatch, make_backend):
    call = sent(monkeypatch, make_backend(API_URL=ENDPOINT))

    assert call["json"] == {"inputs": "I love it", "parameters": {"top_k": None}}


def test_full_ranking__a_top_k_of_the_request_is_sent_as_it_is(monkeypatch, make_backend):
    call = sent(
        monkeypatch,
        make_backend(API_URL=ENDPOINT),
        Parameters(function_to_apply="sigmoid", top_k=1),
        answer=RANKING[:1],
    )

    assert call["json"]["parameters"] == {"function_to_apply": "sigmoid", "top_k": 1}


def test_full_ranking__router_gets_no_top_k_it_did_not_ask_for(monkeypatch, make_backend):
    call = sent(monkeypatch, make_backend(), answer=[RANKING])

    assert "parameters" not in call["json"]


@pytest.mark.parametrize(
    ("url", "option", "expected"),
    [
        (ENDPOINT, False, False),
        (ROUTER, True, True),
        (ENDPOINT, None, True),
        (ROUTER, None, False),
    ],
    ids=["off_for_an_endpoint", "on_for_the_router", "auto_endpoint", "auto_router"],
)
def test_full_ranking__option_overrides_the_guess(monkeypatch, make_backend, url, option, expected):
    backend = make_backend(API_URL=url, FULL_RANKING=option)

    call = sent(monkeypatch, backend, answer=[RANKING])

    assert backend.full_ranking is expected
    assert ("parameters" in call["json"]) is expected


def test_full_ranking__must_be_a_boolean_or_none(make_backend):
    with pytest.raises(TextClassConfigurationError, match="FULL_RANKING"):
        make_backend(API_URL=ENDPOINT, FULL_RANKING="yes")


# The scale-up header.


def test_scale_up_timeout__sent_as_the_header_in_whole_seconds(monkeypatch, make_backend):
    call = sent(monkeypatch, make_backend(API_URL=ENDPOINT, SCALE_UP_TIMEOUT=600, READ_TIMEOUT=660))

    assert call["headers"]["X-Scale-Up-Timeout"] == "600"


def test_scale_up_timeout__not_sent_by_default(monkeypatch, make_backend):
    call = sent(monkeypatch, make_backend(API_URL=ENDPOINT))

    assert "X-Scale-Up-Timeout" not in call["headers"]


@pytest.mark.parametrize("value", [0, -5, "soon", 0.5])
def test_scale_up_timeout__must_be_a_positive_number_of_seconds(make_backend, value):
    with pytest.raises(TextClassConfigurationError, match="SCALE_UP_TIMEOUT"):
        make_backend(API_URL=ENDPOINT, SCALE_UP_TIMEOUT=value)


# A 503 while the endpoint starts a replica.


def test_503__from_an_endpoint_is_waking_with_the_hint_it_gave(monkeypatch, make_backend):
    backend = make_backend(API_URL=ENDPOINT)
    install_post(
        monkeypatch,
        backend,
        make_response(503, json={"error": "Service Unavailable"}, headers={"Retry-After": "7"}),
    )

    with pytest.raises(TransientBackendError) as info:
        backend.classify(["I love it"], Parameters(), model_id=MODEL)

    error = info.value
    assert (error.code, error.status_code, error.retry_after) == ("endpoint_waking", 503, 7.0)
    assert error.model_loading is True
    assert "starting a replica" in error.message and "Service Unavailable" in error.message


def test_503__from_an_endpoint_without_a_hint_still_waking(monkeypatch, make_backend):
    backend = make_backend(API_URL=ENDPOINT)
    install_post(monkeypatch, backend, make_response(503, text="upstream unavailable"))

    with pytest.raises(TransientBackendError) as info:
        backend.classify(["I love it"], Parameters(), model_id=MODEL)

    assert info.value.code == "endpoint_waking" and info.value.retry_after is None


def test_503__from_the_router_keeps_its_own_code(monkeypatch, make_backend):
    backend = make_backend()
    install_post(monkeypatch, backend, make_response(503, json={"error": "unavailable"}))

    with pytest.raises(TransientBackendError) as info:
        backend.classify(["I love it"], Parameters(), model_id=MODEL)

    assert info.value.code == "http_503"


def test_other_errors__from_an_endpoint_map_as_before(monkeypatch, make_backend):
    backend = make_backend(API_URL=ENDPOINT)
    install_post(monkeypatch, backend, make_response(400, json={"error": "bad input"}))

    with pytest.raises(PermanentBackendError) as info:
        backend.classify(["I love it"], Parameters(), model_id=MODEL)

    assert info.value.code == "http_400"


# Checks.


def ids(backend):
    return [message.id for message in backend.check()]


def test_check_w008__read_timeout_not_above_the_scale_up_timeout(make_backend):
    backend = make_backend(API_URL=ENDPOINT, SCALE_UP_TIMEOUT=600, READ_TIMEOUT=600)

    (message,) = backend.check()

    assert message.id == "textclass.W008"
    assert "READ_TIMEOUT (600 s)" in message.msg and "630" in message.hint


def test_check_w008__quiet_when_the_client_waits_longer(make_backend):
    assert ids(make_backend(API_URL=ENDPOINT, SCALE_UP_TIMEOUT=600, READ_TIMEOUT=630)) == []
    assert ids(make_backend(API_URL=ENDPOINT)) == []


@pytest.mark.parametrize("path", ["/predict", "/predict/", "/invocations", "/rerank"])
def test_check_w009__a_tei_route_with_batch_on(make_backend, path):
    backend = make_backend(API_URL=f"http://tei.internal:8080{path}")

    (message,) = backend.check()

    assert message.id == "textclass.W009"
    assert "pair" in message.msg and "backends.tei.Backend" in message.hint


def test_check_w009__quiet_with_batch_off_or_another_route(make_backend):
    assert ids(make_backend(API_URL="http://tei.internal:8080/predict", BATCH=False)) == []
    assert ids(make_backend(API_URL=ENDPOINT)) == []
    assert ids(make_backend(API_URL="http://x/models/{model_id}/predictions")) == []
