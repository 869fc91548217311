"""The TEI backend: request building, scores computed from raw logits, /info, TEI's errors.

HTTP is replaced only at the one seam, the session's ``post`` (``/predict``) and ``get``
(``/info``); the responses are real ``requests.Response`` objects. The same backend is run
against the emulator's TEI mode over real HTTP in ``tests/backends/contract/``.
"""

import math

import pytest
import requests

from django_textclass.backends import tei
from django_textclass.backends.tei import FALLBACK_BATCH_SIZE, Backend, parse_predictions
from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)
from django_textclass.types import Parameters
from tests.backends.helpers import MODEL, FakePost, block_network, install_post, make_response

URL = "http://tei.internal:8080"
KEY = "tei-key-for-the-unit-tests-0123456789"  # noqa: S105 - not a real key
RAW = [{"score": 1.5, "label": "POSITIVE"}, {"score": -1.5, "label": "NEGATIVE"}]
RAW_NEG = [{"score": 2.0, "label": "NEGATIVE"}, {"score": -2.0, "label": "POSITIVE"}]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    block_network(monkeypatch)


@pytest.fixture
def make_backend(monkeypatch):
    """Backends whose /info answers ``info`` (a dict, a response, or an exception)."""
    built = []

    def build(info=None, **options):
        options.setdefault("URL", URL)
        backend = Backend(alias="tei", **options)
        answer = info if info is not None else {"max_client_batch_size": 32}
        if isinstance(answer, dict):
            answer = make_response(200, json=answer)
        backend.fake_get = FakePost(answer)
        monkeypatch.setattr(backend.session, "get", backend.fake_get)
        built.append(backend)
        return backend

    yield build
    for backend in built:
        backend.close()


def classify(monkeypatch, backend, answer, texts=("I love it",), parameters=None):
    fake = install_post(monkeypatch, backend, make_response(200, json=answer))
    rankings = backend.classify(list(texts), parameters or Parameters(), model_id=MODEL)
    return rankings, fake


def pairs(ranking):
    return [(item.label, round(item.score, 12)) for item in ranking.scores]


def softmax(values):
    exps = [math.exp(v - max(values)) for v in values]
    return [e / sum(exps) for e in exps]


# The request.


def test_request__one_text_goes_as_a_string_with_raw_scores(monkeypatch, make_backend):
    _, fake = classify(monkeypatch, make_backend(), RAW)

    assert fake.call["url"] == f"{URL}/predict"
    assert fake.call["json"] == {"inputs": "I love it", "raw_scores": True}


@pytest.mark.parametrize("count", [2, 3])
def test_request__several_texts_go_as_lists_of_one_never_as_a_pair(
    monkeypatch, make_backend, count
):
    texts = ["good", "bad", "meh"][:count]

    _, fake = classify(monkeypatch, make_backend(), [RAW] * count, texts=texts)

    assert fake.call["json"]["inputs"] == [[text] for text in texts]


@pytest.mark.parametrize(("option", "sent"), [(None, None), (True, True), (False, False)])
def test_request__truncate_sent_only_when_set(monkeypatch, make_backend, option, sent):
    _, fake = classify(monkeypatch, make_backend(TRUNCATE=option), RAW)

    assert fake.call["json"].get("truncate", None) is sent


def test_request__headers_without_and_with_an_api_key(monkeypatch, make_backend):
    _, plain = classify(monkeypatch, make_backend(), RAW)
    _, keyed = classify(monkeypatch, make_backend(API_KEY=KEY, HEADERS={"X-Team": "a"}), RAW)

    assert plain.call["headers"] == {"Accept": "application/json"}
    assert keyed.call["headers"] == {
        "Accept": "application/json",
        "Authorization": f"Bearer {KEY}",
        "X-Team": "a",
    }


def test_request__model_id_and_cache_flags_are_not_sent(monkeypatch, make_backend):
    backend = make_backend()
    fake = install_post(monkeypatch, backend, make_response(200, json=RAW))

    backend.classify(
        ["x"], Parameters(), model_id="other/model", use_cache=False, wait_for_model=True
    )

    assert "other/model" not in str(fake.call)
    assert set(fake.call["headers"]) == {"Accept"}


# Scores, computed here as the Inference API computes them.


def test_scores__default_is_softmax_of_the_raw_logits(monkeypatch, make_backend):
    (ranking,), _ = classify(monkeypatch, make_backend(), RAW)

    expected = softmax([1.5, -1.5])
    assert pairs(ranking) == [
        ("POSITIVE", round(expected[0], 12)),
        ("NEGATIVE", round(expected[1], 12)),
    ]
    assert math.isclose(sum(item.score for item in ranking.scores), 1.0)


@pytest.mark.parametrize(
    ("function", "scores"),
    [
        ("sigmoid", [1 / (1 + math.exp(-1.5)), 1 / (1 + math.exp(1.5))]),
        ("none", [1.5, -1.5]),
        ("softmax", softmax([1.5, -1.5])),
    ],
)
def test_scores__function_to_apply(monkeypatch, make_backend, function, scores):
    (ranking,), _ = classify(
        monkeypatch, make_backend(), RAW, parameters=Parameters(function_to_apply=function)
    )

    assert [item.label for item in ranking.scores] == ["POSITIVE", "NEGATIVE"]
    assert [item.score for item in ranking.scores] == pytest.approx(scores, rel=1e-12)


def test_scores__top_k_keeps_the_best(monkeypatch, make_backend):
    (ranking,), _ = classify(
        monkeypatch,
        make_backend(),
        RAW_NEG,
        parameters=Parameters(function_to_apply="none", top_k=1),
    )

    assert pairs(ranking) == [("NEGATIVE", 2.0)]


def test_scores__one_label_model_defaults_to_sigmoid(monkeypatch, make_backend):
    (ranking,), _ = classify(monkeypatch, make_backend(), [{"score": 0.4, "label": "toxic"}])

    assert ranking.scores[0].score == pytest.approx(1 / (1 + math.exp(-0.4)))


def test_scores__multi_label_option_defaults_to_sigmoid(monkeypatch, make_backend):
    (ranking,), _ = classify(monkeypatch, make_backend(MULTI_LABEL=True), RAW)

    assert [item.score for item in ranking.scores] == pytest.approx(
        [1 / (1 + math.exp(-1.5)), 1 / (1 + math.exp(1.5))]
    )


def test_scores__huge_logits_do_not_overflow(monkeypatch, make_backend):
    huge = [{"score": 1000.0, "label": "A"}, {"score": -1000.0, "label": "B"}]

    (soft,), _ = classify(monkeypatch, make_backend(), huge)
    (sig,), _ = classify(
        monkeypatch, make_backend(), huge, parameters=Parameters(function_to_apply="sigmoid")
    )

    assert pairs(soft) == [("A", 1.0), ("B", 0.0)]
    assert pairs(sig) == [("A", 1.0), ("B", 0.0)]


def test_scores__batch_maps_each_prediction_to_its_text(monkeypatch, make_backend):
    rankings, _ = classify(
        monkeypatch, make_backend(), [RAW, RAW_NEG, RAW], texts=["good", "bad", "fine"]
    )

    assert [ranking.top.label for ranking in rankings] == ["POSITIVE", "NEGATIVE", "POSITIVE"]


# Answers TEI would not give.


@pytest.mark.parametrize(
    ("answer", "count"),
    [
        pytest.param([RAW], 1, id="nested_for_one_text"),
        pytest.param(RAW, 2, id="flat_for_two_texts"),
        pytest.param([RAW], 2, id="one_prediction_for_two_texts"),
        pytest.param({"error": "x"}, 1, id="object"),
        pytest.param([], 1, id="empty"),
        pytest.param([[], RAW], 2, id="empty_prediction"),
        pytest.param(
            [{"score": 1.0, "label": "A"}, {"score": 2.0, "label": "A"}], 1, id="label_twice"
        ),
        pytest.param([{"score": "1", "label": "A"}], 1, id="string_score"),
        pytest.param([{"score": 1.0}], 1, id="no_label"),
    ],
)
def test_answer__other_shapes_raise_invalid_response(monkeypatch, make_backend, answer, count):
    backend = make_backend()
    install_post(monkeypatch, backend, make_response(200, json=answer))

    with pytest.raises(InvalidResponseError):
        backend.classify(["t"] * count, Parameters(), model_id=MODEL)


def test_parse_predictions__logits_per_text():
    assert parse_predictions([RAW, RAW_NEG], 2) == [
        {"POSITIVE": 1.5, "NEGATIVE": -1.5},
        {"NEGATIVE": 2.0, "POSITIVE": -2.0},
    ]


# The batch size: the server's /info, the option, the fallback.


@pytest.mark.parametrize(
    ("server", "option", "expected"),
    [
        (32, None, 32),
        (8, None, 8),
        (32, 10, 10),
        (8, 10, 8),
    ],
)
def test_batch_size__the_servers_limit_caps_the_option(make_backend, server, option, expected):
    backend = make_backend({"max_client_batch_size": server}, MAX_BATCH_SIZE=option)

    assert backend.batch_size == expected
    assert backend.fake_get.call["url"] == f"{URL}/info"


@pytest.mark.parametrize(
    "info",
    [
        requests.ConnectionError("refused"),
        make_response(404, text="Not Found"),
        make_response(200, json=["not", "an", "object"]),
        make_response(200, json={"max_client_batch_size": "many"}),
    ],
    ids=["down", "404", "not_an_object", "no_number"],
)
@pytest.mark.parametrize(("option", "expected"), [(None, FALLBACK_BATCH_SIZE), (12, 12)])
def test_batch_size__falls_back_when_info_cannot_be_read(make_backend, info, option, expected):
    backend = make_backend(info, MAX_BATCH_SIZE=option)

    assert backend.batch_size == expected


def test_info__read_once_then_again_after_its_ttl(monkeypatch, make_backend):
    clock = [1000.0]
    monkeypatch.setattr(tei.time, "monotonic", lambda: clock[0])
    backend = make_backend({"max_client_batch_size": 16})

    assert [backend.batch_size for _ in range(3)] == [16, 16, 16]
    assert len(backend.fake_get.calls) == 1
    clock[0] += tei.INFO_TTL + 1
    assert backend.batch_size == 16
    assert len(backend.fake_get.calls) == 2


def test_info__after_a_failure_tried_again_later(monkeypatch, make_backend):
    clock = [1000.0]
    monkeypatch.setattr(tei.time, "monotonic", lambda: clock[0])
    backend = make_backend(requests.ConnectionError("refused"))

    assert backend.batch_size == FALLBACK_BATCH_SIZE
    assert backend.batch_size == FALLBACK_BATCH_SIZE
    assert len(backend.fake_get.calls) == 1
    backend.fake_get.result = make_response(200, json={"max_client_batch_size": 4})
    clock[0] += tei.INFO_RETRY + 1
    assert backend.batch_size == 4


def test_info__sent_with_the_api_key_and_a_short_read_timeout(make_backend):
    backend = make_backend(API_KEY=KEY, READ_TIMEOUT=60, CONNECT_TIMEOUT=2)

    assert backend.info == {"max_client_batch_size": 32}
    call = backend.fake_get.call
    assert call["headers"]["Authorization"] == f"Bearer {KEY}"
    assert call["timeout"] == (2.0, tei.INFO_READ_TIMEOUT)


# TEI's errors.


def tei_error(status, error_type, message):
    return make_response(status, json={"error": message, "error_type": error_type})


def raised(monkeypatch, backend, response, count=1):
    install_post(monkeypatch, backend, response)
    with pytest.raises(Exception) as info:  # noqa: PT011 - each test checks the family
        backend.classify(["t"] * count, Parameters(), model_id=MODEL)
    return info.value


@pytest.mark.parametrize("status", [413, 422], ids=["tei_1.8", "tei_1.9"])
def test_error__batch_over_the_limit_is_permanent_and_lowers_the_batch_size(
    monkeypatch, make_backend, status
):
    backend = make_backend({"max_client_batch_size": 32})
    assert backend.batch_size == 32  # read before the call, as the pipeline does
    message = "batch size 20 > maximum allowed batch size 16"

    error = raised(monkeypatch, backend, tei_error(status, "Validation", message), count=20)

    assert type(error) is PermanentBackendError
    assert (error.code, error.status_code) == (f"http_{status}", status)
    assert message in error.message and "[Validation]" in error.message
    assert backend.batch_size == 16


def test_error__a_limit_learnt_from_a_refusal_gives_way_to_the_next_info(monkeypatch, make_backend):
    clock = [1000.0]
    monkeypatch.setattr(tei.time, "monotonic", lambda: clock[0])
    backend = make_backend({"max_client_batch_size": 32})
    assert backend.batch_size == 32
    message = "batch size 20 > maximum allowed batch size 16"
    raised(monkeypatch, backend, tei_error(422, "Validation", message), count=20)
    assert backend.batch_size == 16

    backend.fake_get.result = make_response(200, json={"max_client_batch_size": 24})
    clock[0] += tei.INFO_TTL + 1

    assert backend.batch_size == 24  # the restarted server's own word


def test_error__too_many_tokens_is_permanent(monkeypatch, make_backend):
    message = "Input validation error: `inputs` must have less than 512 tokens. Given: 1002"

    error = raised(monkeypatch, make_backend(), tei_error(422, "Validation", message))

    assert type(error) is PermanentBackendError and error.code == "http_422"
    assert "512 tokens" in error.message and "truncation" in error.message


def test_error__inference_failed_is_permanent(monkeypatch, make_backend):
    error = raised(monkeypatch, make_backend(), tei_error(424, "Backend", "score is NaN"))

    assert type(error) is PermanentBackendError and error.code == "http_424"


def test_error__a_model_that_is_no_classifier_is_a_configuration_error(monkeypatch, make_backend):
    error = raised(
        monkeypatch, make_backend(), tei_error(424, "Backend", "Model is not a classifier model")
    )

    assert isinstance(error, TextClassConfigurationError)
    assert "not a sequence classifier" in str(error)


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (429, "Overloaded", "Model is overloaded"),
        (503, "Unhealthy", "unhealthy"),
    ],
)
def test_error__overloaded_and_unhealthy_are_transient(
    monkeypatch, make_backend, status, error_type, message
):
    error = raised(monkeypatch, make_backend(), tei_error(status, error_type, message))

    assert isinstance(error, TransientBackendError)
    assert (error.code, error.status_code) == (f"http_{status}", status)
    assert f"[{error_type}]" in error.message


def test_error__401_without_a_body_asks_for_the_api_key(monkeypatch, make_backend):
    error = raised(monkeypatch, make_backend(), make_response(401))

    assert type(error) is PermanentBackendError and error.code == "http_401"
    assert "API_KEY" in error.message


def test_error__plain_text_refusal_keeps_the_http_mapping(monkeypatch, make_backend):
    refusal = make_response(422, text="Failed to deserialize the JSON body into the target type")

    error = raised(monkeypatch, make_backend(), refusal)

    assert type(error) is PermanentBackendError and "[" not in error.message


def test_error__api_key_echoed_by_the_server_is_scrubbed(monkeypatch, make_backend):
    backend = make_backend(API_KEY=KEY)

    error = raised(monkeypatch, backend, tei_error(422, "Validation", f"bad key {KEY}"))

    assert KEY not in str(error) and "***" in str(error)
    assert KEY not in repr(backend)


# Options.


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"URL": None}, "URL"),
        ({"URL": "tei.internal:8080"}, "URL"),
        ({"URL": f"{URL}/predict"}, "base URL"),
        ({"API_KEY": 42}, "API_KEY"),
        ({"TRUNCATE": "yes"}, "TRUNCATE"),
        ({"MULTI_LABEL": 1}, "MULTI_LABEL"),
        ({"MAX_BATCH_SIZE": 0}, "MAX_BATCH_SIZE"),
        ({"BATCH": False}, "BATCH"),
    ],
)
def test_options__refused_with_the_option_named(options, words):
    options = {"URL": URL, **options}

    with pytest.raises(TextClassConfigurationError, match=words):
        Backend(alias="tei", **options)


def test_options__trailing_slash_is_dropped_and_no_check_message(make_backend):
    backend = make_backend(URL=f"{URL}/")

    assert backend.url == URL
    assert backend.check() == []
