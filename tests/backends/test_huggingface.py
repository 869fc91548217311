"""The Hugging Face backend: request building, response shapes and options.

HTTP is replaced only at the one seam, the backend session's ``post``; the
responses are real ``requests.Response`` objects (see ``helpers.py``).
"""

import math

import pytest

from django_textclass import __version__
from django_textclass.backends.base import BaseBackend
from django_textclass.backends.huggingface import (
    DEFAULT_API_URL,
    Backend,
    model_path,
    parse_rankings,
)
from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TextClassConfigurationError,
)
from django_textclass.types import LabelScore, Parameters, Ranking
from tests.backends.helpers import MODEL, TOKEN, block_network, install_post, make_response

POS_NEG = [{"label": "POSITIVE", "score": 0.9998}, {"label": "NEGATIVE", "score": 0.0002}]
NEG_POS = [{"label": "NEGATIVE", "score": 0.97}, {"label": "POSITIVE", "score": 0.03}]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    block_network(monkeypatch)


@pytest.fixture
def make_backend():
    """Build backends with a token; close their sessions after the test."""
    built = []

    def build(**options):
        options.setdefault("TOKEN", TOKEN)
        backend = Backend(**options)
        built.append(backend)
        return backend

    yield build
    for backend in built:
        backend.close()


def classify(monkeypatch, backend, answer, texts=("I love it",), parameters=None, **kwargs):
    """Run ``backend.classify`` against one scripted 200 answer; return (rankings, fake)."""
    fake = install_post(monkeypatch, backend, make_response(200, json=answer))
    rankings = backend.classify(
        list(texts), parameters or Parameters(), model_id=kwargs.pop("model_id", MODEL), **kwargs
    )
    return rankings, fake


def as_pairs(ranking):
    return [(item.label, item.score) for item in ranking.scores]


# Response shapes.


def test_classify__nested_answer_for_one_text(monkeypatch, make_backend):
    rankings, _ = classify(monkeypatch, make_backend(), [POS_NEG])

    assert len(rankings) == 1
    assert as_pairs(rankings[0]) == [("POSITIVE", 0.9998), ("NEGATIVE", 0.0002)]
    assert rankings[0].top == LabelScore("POSITIVE", 0.9998)


def test_classify__flat_answer_for_one_text(monkeypatch, make_backend):
    # TEI and dedicated endpoints answer one text with a flat list (score before label).
    flat = [{"score": 0.99, "label": "POSITIVE"}, {"score": 0.01, "label": "NEGATIVE"}]

    rankings, _ = classify(monkeypatch, make_backend(), flat)

    assert [as_pairs(r) for r in rankings] == [[("POSITIVE", 0.99), ("NEGATIVE", 0.01)]]


def test_classify__nested_answer_for_a_batch_maps_in_order(monkeypatch, make_backend):
    rankings, _ = classify(
        monkeypatch, make_backend(), [POS_NEG, NEG_POS, POS_NEG], texts=["good", "bad", "fine"]
    )

    assert [r.top.label for r in rankings] == ["POSITIVE", "NEGATIVE", "POSITIVE"]
    assert as_pairs(rankings[1]) == [("NEGATIVE", 0.97), ("POSITIVE", 0.03)]


def test_classify__flat_top1_per_input_naming_a_label_twice_for_a_batch(monkeypatch, make_backend):
    # The Inference Toolkit answers a list of inputs with its top label for each; a label
    # named twice cannot be one ranking, so this reads one way only.
    answer = [
        {"label": "NEGATIVE", "score": 0.8},
        {"label": "POSITIVE", "score": 0.7},
        {"label": "NEGATIVE", "score": 0.6},
    ]

    rankings, _ = classify(monkeypatch, make_backend(), answer, texts=["bad", "good", "meh"])

    assert [as_pairs(r) for r in rankings] == [
        [("NEGATIVE", 0.8)],
        [("POSITIVE", 0.7)],
        [("NEGATIVE", 0.6)],
    ]


@pytest.mark.parametrize(
    "texts", [["I love it", "I hate it"], ["a", "b", "c"]], ids=["two_texts", "three_texts"]
)
def test_classify__flat_list_of_different_labels_for_a_batch_is_refused(
    monkeypatch, make_backend, texts
):
    # The TEI trap: TEI's `/` reads ["I love it", "I hate it"] as one pair and ranks it over
    # its two labels. That answer is the same as the Toolkit's best label of each text.
    labels = ["POSITIVE", "NEGATIVE", "NEUTRAL"][: len(texts)]
    answer = [{"score": 0.55 - n / 10, "label": label} for n, label in enumerate(labels)]
    backend = make_backend()
    fake = install_post(monkeypatch, backend, make_response(200, json=answer))

    with pytest.raises(InvalidResponseError) as info:
        backend.classify(texts, Parameters(), model_id=MODEL)

    assert info.value.code == "ambiguous_response"
    assert "TEI backend" in info.value.message and "BATCH" in info.value.message
    assert len(fake.calls) == 1


def test_classify__flat_ranking_of_another_length_for_a_batch_names_the_cause(
    monkeypatch, make_backend
):
    # TEI ranks the pair over a three-label model: three labels for two texts.
    answer = [
        {"score": 0.5, "label": "A"},
        {"score": 0.3, "label": "B"},
        {"score": 0.2, "label": "C"},
    ]
    backend = make_backend()
    install_post(monkeypatch, backend, make_response(200, json=answer))

    with pytest.raises(InvalidResponseError) as info:
        backend.classify(["one", "two"], Parameters(), model_id=MODEL)

    assert info.value.code == "invalid_response"
    assert "flat list of 3 labels" in info.value.message and "pair" in info.value.message


def test_classify__unsorted_ranking_is_sorted_best_first(monkeypatch, make_backend):
    answer = [
        [
            {"label": "neutral", "score": 0.2},
            {"label": "positive", "score": 0.7},
            {"label": "negative", "score": 0.1},
        ]
    ]

    rankings, _ = classify(monkeypatch, make_backend(), answer)

    assert [item.label for item in rankings[0].scores] == ["positive", "neutral", "negative"]


def test_classify__top_k_cut_answer_is_kept_as_sent(monkeypatch, make_backend):
    answer = [[{"label": "joy", "score": 0.6}, {"label": "anger", "score": 0.3}]]

    rankings, fake = classify(monkeypatch, make_backend(), answer, parameters=Parameters(top_k=2))

    assert as_pairs(rankings[0]) == [("joy", 0.6), ("anger", 0.3)]
    assert fake.call["json"]["parameters"] == {"top_k": 2}


def test_classify__integer_scores_are_accepted_as_floats(monkeypatch, make_backend):
    rankings, _ = classify(monkeypatch, make_backend(), [[{"label": "A", "score": 1}]])

    assert rankings[0].scores == (LabelScore("A", 1.0),)
    assert isinstance(rankings[0].scores[0].score, float)


@pytest.mark.parametrize(
    ("answer", "count"),
    [
        pytest.param({"label": "POSITIVE", "score": 0.9}, 1, id="object_instead_of_list"),
        pytest.param({"error": "something"}, 1, id="error_object_with_200"),
        pytest.param([], 1, id="empty_list"),
        pytest.param([[]], 1, id="empty_nested_ranking"),
        pytest.param([[], []], 2, id="empty_rankings_in_batch"),
        pytest.param("POSITIVE", 1, id="string"),
        pytest.param(None, 1, id="null"),
        pytest.param(0.9, 1, id="number"),
        pytest.param([POS_NEG, NEG_POS], 1, id="two_rankings_for_one_text"),
        pytest.param([POS_NEG], 2, id="one_ranking_for_two_texts"),
        pytest.param([POS_NEG, NEG_POS], 3, id="two_rankings_for_three_texts"),
        pytest.param(POS_NEG + POS_NEG[:1], 2, id="three_flat_items_for_two_texts"),
        pytest.param([[{"score": 0.9}]], 1, id="item_without_label"),
        pytest.param([[{"label": "", "score": 0.9}]], 1, id="empty_label"),
        pytest.param([[{"label": 7, "score": 0.9}]], 1, id="numeric_label"),
        pytest.param([[{"label": "A"}]], 1, id="item_without_score"),
        pytest.param([[{"label": "A", "score": "0.9"}]], 1, id="string_score"),
        pytest.param([[{"label": "A", "score": None}]], 1, id="null_score"),
        pytest.param([[{"label": "A", "score": True}]], 1, id="bool_score"),
        pytest.param([[{"label": "A", "score": math.nan}]], 1, id="nan_score"),
        pytest.param([[{"label": "A", "score": math.inf}]], 1, id="infinite_score"),
        pytest.param([["POSITIVE"]], 1, id="ranking_of_strings"),
        pytest.param([POS_NEG, "x"], 2, id="batch_with_a_string_item"),
        pytest.param([[POS_NEG]], 1, id="three_levels_deep"),
    ],
)
def test_classify__bad_shape_raises_invalid_response(monkeypatch, make_backend, answer, count):
    backend = make_backend()
    fake = install_post(monkeypatch, backend, make_response(200, json=answer))

    with pytest.raises(InvalidResponseError) as info:
        backend.classify(["t"] * count, Parameters(), model_id=MODEL)

    assert info.value.code == "invalid_response"
    assert len(fake.calls) == 1


def test_classify__nan_literal_in_body_raises_invalid_response(monkeypatch, make_backend):
    # json.loads accepts the non-standard NaN literal, so the parser must reject it.
    backend = make_backend()
    body = '[[{"label": "A", "score": NaN}]]'
    install_post(monkeypatch, backend, make_response(200, text=body))

    with pytest.raises(InvalidResponseError, match="finite numeric score"):
        backend.classify(["t"], Parameters(), model_id=MODEL)


@pytest.mark.parametrize(
    "body",
    ["OK", "<html><body>hello</body></html>", "", '[[{"label": "A"'],
    ids=["plain_text", "html", "empty", "truncated_json"],
)
def test_classify__non_json_200_raises_invalid_response(monkeypatch, make_backend, body):
    backend = make_backend()
    install_post(monkeypatch, backend, make_response(200, text=body))

    with pytest.raises(InvalidResponseError) as info:
        backend.classify(["t"], Parameters(), model_id=MODEL)

    assert info.value.status_code == 200
    assert "not JSON" in info.value.message


def test_parse_rankings__returns_ranking_objects():
    rankings = parse_rankings([POS_NEG], 1)

    assert rankings == [Ranking((LabelScore("POSITIVE", 0.9998), LabelScore("NEGATIVE", 0.0002)))]


# The request.


def test_request__url_template_gets_the_model_id(monkeypatch, make_backend):
    _, fake = classify(monkeypatch, make_backend(), [POS_NEG], model_id="ProsusAI/finbert")

    assert fake.call["url"] == "https://router.huggingface.co/hf-inference/models/ProsusAI/finbert"


@pytest.mark.parametrize(
    "model_id",
    [
        "../../../x?y#z",
        "a/../b",
        "x?y",
        "x#y",
        "a b",
        "",
        "a/b/c",
        "%2e%2e",
        "x\x00y",
        "\ud800",
    ],
)
def test_request__bad_model_id__permanent_error_and_nothing_sent(
    monkeypatch, make_backend, model_id
):
    # A stored row (ORM, fixture, bulk import) once steered the URL: POST /x?y on the host.
    backend = make_backend()
    fake = install_post(monkeypatch, backend, make_response(200, json=[POS_NEG]))

    with pytest.raises(PermanentBackendError) as excinfo:
        backend.classify(["I love it"], Parameters(), model_id=model_id)

    assert excinfo.value.code == "invalid_model_id"
    assert fake.calls == []


ENDPOINT = "https://abc123.eu-west-1.aws.endpoints.huggingface.cloud/toxicity"


def test_request__endpoint_url_a_key_names__posted_to_it(monkeypatch, make_backend, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MODELS": {"toxicity": {"MODEL": ENDPOINT}}}
    _, fake = classify(monkeypatch, make_backend(), [POS_NEG], model_id=ENDPOINT)

    assert [call["url"] for call in fake.calls] == [ENDPOINT]


@pytest.mark.parametrize("url", [ENDPOINT, ENDPOINT + "/../admin", "https://evil.example/"])
def test_request__endpoint_url_no_key_names__permanent_error_and_nothing_sent(
    monkeypatch, make_backend, settings, url
):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MODELS": {"toxicity": {"MODEL": ENDPOINT}}}
    if url == ENDPOINT:
        settings.TEXTCLASS = {**settings.TEXTCLASS, "MODELS": {}}
    backend = make_backend()
    fake = install_post(monkeypatch, backend, make_response(200, json=[POS_NEG]))

    with pytest.raises(PermanentBackendError) as excinfo:
        backend.classify(["I love it"], Parameters(), model_id=url)

    assert excinfo.value.code == "invalid_model_id"
    assert fake.calls == []


def test_model_path__encodes_each_segment_and_keeps_the_slash():
    assert model_path("ProsusAI/finbert") == "ProsusAI/finbert"
    assert model_path("a b/c?d#e") == "a%20b/c%3Fd%23e"
    assert model_path("x%2F") == "x%252F"


def test_request__default_url_is_the_router(make_backend):
    backend = make_backend()

    assert backend.api_url == DEFAULT_API_URL
    assert backend.endpoint("gpt2") == "https://router.huggingface.co/hf-inference/models/gpt2"


def test_request__custom_url_template_gets_the_model_id(monkeypatch, make_backend):
    backend = make_backend(API_URL="http://127.0.0.1:8080/v1/{model_id}/predict")

    _, fake = classify(monkeypatch, backend, [POS_NEG], model_id="gpt2")

    assert fake.call["url"] == "http://127.0.0.1:8080/v1/gpt2/predict"


def test_request__fixed_endpoint_url_is_used_as_is(monkeypatch, make_backend):
    url = "https://uu149rez6gw9ehej.eu-west-1.aws.endpoints.huggingface.cloud/distilbert-sentiment"
    backend = make_backend(API_URL=url)

    _, fake = classify(monkeypatch, backend, [POS_NEG], model_id="ProsusAI/finbert")

    assert fake.call["url"] == url


def test_request__one_text_is_sent_as_a_string(monkeypatch, make_backend):
    _, fake = classify(monkeypatch, make_backend(), [POS_NEG], texts=["I love it"])

    assert fake.call["json"] == {"inputs": "I love it"}


def test_request__several_texts_are_sent_as_a_list(monkeypatch, make_backend):
    _, fake = classify(monkeypatch, make_backend(), [POS_NEG, NEG_POS], texts=["good", "bad"])

    assert fake.call["json"] == {"inputs": ["good", "bad"]}


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (Parameters(), None),
        (Parameters(function_to_apply="sigmoid"), {"function_to_apply": "sigmoid"}),
        (Parameters(function_to_apply="none"), {"function_to_apply": "none"}),
        (Parameters(top_k=3), {"top_k": 3}),
        (
            Parameters(function_to_apply="softmax", top_k=1),
            {"function_to_apply": "softmax", "top_k": 1},
        ),
    ],
    ids=["none_set", "sigmoid", "function_none", "top_k", "both"],
)
def test_request__parameters_only_when_set(monkeypatch, make_backend, parameters, expected):
    _, fake = classify(monkeypatch, make_backend(), [POS_NEG], parameters=parameters)

    payload = fake.call["json"]
    if expected is None:
        assert "parameters" not in payload
    else:
        assert payload["parameters"] == expected


def test_request__default_headers(monkeypatch, make_backend):
    _, fake = classify(monkeypatch, make_backend(), [POS_NEG])

    assert fake.call["headers"] == {
        "Accept": "application/json",
        "Authorization": f"Bearer {TOKEN}",
    }


def test_request__use_cache_false_sends_x_use_cache(monkeypatch, make_backend):
    _, fake = classify(monkeypatch, make_backend(), [POS_NEG], use_cache=False)

    assert fake.call["headers"]["x-use-cache"] == "false"
    assert "x-wait-for-model" not in fake.call["headers"]


def test_request__wait_for_model_sends_x_wait_for_model(monkeypatch, make_backend):
    _, fake = classify(monkeypatch, make_backend(), [POS_NEG], wait_for_model=True)

    assert fake.call["headers"]["x-wait-for-model"] == "true"
    assert "x-use-cache" not in fake.call["headers"]


def test_request__extra_headers_option_is_sent(monkeypatch, make_backend):
    backend = make_backend(HEADERS={"X-HF-Bill-To": "my-org"})

    _, fake = classify(monkeypatch, backend, [POS_NEG])

    assert fake.call["headers"]["X-HF-Bill-To"] == "my-org"
    assert fake.call["headers"]["Authorization"] == f"Bearer {TOKEN}"


def test_request__user_agent_names_the_package_version(make_backend):
    user_agent = make_backend().session.headers["User-Agent"]

    assert user_agent.startswith(f"django-textclass/{__version__} ")
    assert "python-requests/" in user_agent


@pytest.mark.parametrize(
    ("options", "expected"),
    [({}, (5.0, 30.0)), ({"CONNECT_TIMEOUT": 2, "READ_TIMEOUT": 7.5}, (2.0, 7.5))],
    ids=["defaults", "configured"],
)
def test_request__connect_read_timeout_tuple_is_passed(
    monkeypatch, make_backend, options, expected
):
    _, fake = classify(monkeypatch, make_backend(**options), [POS_NEG])

    assert fake.call["timeout"] == expected


# The token.


def test_token__from_token_option(monkeypatch, make_backend):
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")

    _, fake = classify(monkeypatch, make_backend(TOKEN="hf_from_option"), [POS_NEG])

    assert fake.call["headers"]["Authorization"] == "Bearer hf_from_option"


def test_token__from_hf_token_env_var(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
    backend = Backend()

    _, fake = classify(monkeypatch, backend, [POS_NEG])

    assert backend.has_token
    assert fake.call["headers"]["Authorization"] == "Bearer hf_from_environment"
    backend.close()


@pytest.mark.parametrize("token_option", [None, ""], ids=["absent", "empty"])
def test_token__no_authorization_header_without_a_token(monkeypatch, token_option):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    backend = Backend(TOKEN=token_option)

    _, fake = classify(monkeypatch, backend, [POS_NEG])

    assert not backend.has_token
    assert "Authorization" not in fake.call["headers"]
    assert "Authorization" not in backend.session.headers
    backend.close()


def test_token__not_in_repr_or_str_of_the_backend(make_backend):
    backend = make_backend()

    assert TOKEN not in repr(backend)
    assert TOKEN not in str(backend)


# Options.


def test_options__batch_false_means_batch_size_1(make_backend):
    backend = make_backend(BATCH=False, MAX_BATCH_SIZE=16)

    assert backend.supports_batch is False
    assert backend.batch_size == 1


@pytest.mark.parametrize(("options", "expected"), [({}, 32), ({"MAX_BATCH_SIZE": 8}, 8)])
def test_options__max_batch_size_is_honoured(make_backend, options, expected):
    backend = make_backend(**options)

    assert backend.supports_batch is True
    assert backend.batch_size == expected


def test_options__unknown_option_raises_configuration_error():
    with pytest.raises(TextClassConfigurationError, match="BATCHSIZE"):
        Backend(alias="hf", TOKEN=TOKEN, BATCHSIZE=4)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/{model_id}",
        "router.huggingface.co/hf-inference/models/{model_id}",
        "",
        None,
        42,
    ],
)
def test_options__non_http_api_url_raises_configuration_error(url):
    with pytest.raises(TextClassConfigurationError, match="API_URL"):
        Backend(alias="hf", TOKEN=TOKEN, API_URL=url)


@pytest.mark.parametrize(
    "options",
    [{"READ_TIMEOUT": "soon"}, {"CONNECT_TIMEOUT": "x"}, {"MAX_BATCH_SIZE": "many"}],
    ids=["read_timeout", "connect_timeout", "max_batch_size"],
)
def test_options__non_numeric_value_raises_configuration_error(options):
    with pytest.raises(TextClassConfigurationError):
        Backend(TOKEN=TOKEN, **options)


@pytest.mark.parametrize(
    "options", [{"READ_TIMEOUT": 0}, {"CONNECT_TIMEOUT": -1}], ids=["read_zero", "connect_negative"]
)
def test_options__non_positive_timeout_raises_configuration_error(options):
    with pytest.raises(TextClassConfigurationError):
        Backend(TOKEN=TOKEN, **options)


# The base contract.


class _WrongCountBackend(BaseBackend):
    supports_batch = True
    max_batch_size = 8

    def __init__(self, answer_count, **options):
        super().__init__(**options)
        self.answer_count = answer_count

    def classify_texts(self, texts, parameters, *, model_id, use_cache, wait_for_model):
        ranking = Ranking((LabelScore("A", 1.0),))
        return [ranking] * self.answer_count


@pytest.mark.parametrize(("texts", "answers"), [(2, 1), (2, 3), (1, 0)])
def test_base_classify__wrong_number_of_rankings_raises_invalid_response(texts, answers):
    backend = _WrongCountBackend(answers)

    with pytest.raises(InvalidResponseError, match=f"expected {texts} rankings, got {answers}"):
        backend.classify(["t"] * texts, Parameters(), model_id=MODEL)


def test_base_classify__right_number_of_rankings_is_returned():
    rankings = _WrongCountBackend(2).classify(["a", "b"], Parameters(), model_id=MODEL)

    assert len(rankings) == 2


def test_base__unknown_options_raise_configuration_error():
    with pytest.raises(TextClassConfigurationError, match="NOPE"):
        _WrongCountBackend(1, alias="x", NOPE=1)


def test_base__batch_size_is_1_without_batch_support():
    backend = BaseBackend()

    assert backend.batch_size == 1
    with pytest.raises(NotImplementedError):
        backend.classify(["t"], Parameters(), model_id=MODEL)


def test_retired_host__fails_without_calling(monkeypatch):
    backend = Backend(API_URL="https://api-inference.huggingface.co/models/{model_id}", TOKEN="t")
    post = install_post(monkeypatch, backend, make_response(200, json=[[]]))

    with pytest.raises(PermanentBackendError) as info:
        backend.classify(["x"], Parameters(), model_id="gpt2")

    assert info.value.code == "retired_host"
    assert "router.huggingface.co" in str(info.value)
    assert post.calls == []
