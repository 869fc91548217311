"""The emulator's TEI mode and its Inference Toolkit shape, over real HTTP."""

import math
import re

import pytest
import requests

from django_textclass.testing import InferenceAPIEmulator, Reply, TEIMode
from django_textclass.testing.scoring import rank
from tests.testing.helpers import EmulatorCLI

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
LABELS = ["POSITIVE", "NEGATIVE"]


@pytest.fixture
def emu():
    with InferenceAPIEmulator(tei=TEIMode()) as emulator:
        yield emulator


def predict(emu, inputs, path="/predict", **fields):
    return requests.post(emu.url + path, json={"inputs": inputs, **fields}, timeout=10)


def tei_ranking(text, function=None, labels=LABELS):
    """The emulator's ranking of ``text`` in TEI's key order (score first)."""
    return [
        {"score": item["score"], "label": item["label"]} for item in rank(labels, text, function)
    ]


# Off unless asked for.


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/predict"), ("GET", "/info"), ("POST", "/"), ("POST", "/invocations")],
)
def test_off__tei_routes_answer_404(method, path):
    with InferenceAPIEmulator() as emu:
        response = requests.request(method, emu.url + path, json={"inputs": "x"}, timeout=10)

    assert response.status_code == 404


def test_off__can_be_turned_on_and_off_while_running():
    with InferenceAPIEmulator() as emu:
        emu.tei = TEIMode()
        on = predict(emu, "x").status_code
        emu.tei = None
        off = predict(emu, "x").status_code

    assert (on, off) == (200, 404)


def test_mode__rejects_what_is_not_a_tei_mode(emu):
    with pytest.raises(ValueError, match="TEIMode"):
        emu.tei = {"max_client_batch_size": 2}


@pytest.mark.parametrize(
    "options",
    [
        {"max_client_batch_size": 0},
        {"validation_status": 400},
        {"model_id": ""},
        {"max_input_length": 0},
    ],
)
def test_mode__rejects_invalid_values(options):
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the field
        TEIMode(**options)


# /info and /health.


def test_info__describes_the_classifier_and_its_limits():
    with InferenceAPIEmulator(
        labels={"m/x": ["a", "b", "c"]}, tei=TEIMode(model_id="m/x", max_client_batch_size=4)
    ) as emu:
        info = requests.get(emu.url + "/info", timeout=10).json()

    assert info["model_id"] == "m/x"
    assert info["max_client_batch_size"] == 4
    assert info["model_type"]["classifier"]["id2label"] == {"0": "a", "1": "b", "2": "c"}
    assert info["auto_truncate"] is True and info["max_input_length"] == 512


def test_info__can_be_hidden_and_takes_get_only(emu):
    emu.tei = TEIMode(info=False)

    assert requests.get(emu.url + "/info", timeout=10).status_code == 404
    assert requests.post(emu.url + "/info", timeout=10).status_code == 405
    assert requests.get(emu.url + "/health", timeout=10).status_code == 200


def test_info__does_not_consume_the_script(emu):
    emu.script(Reply.tei_error("Overloaded"))

    requests.get(emu.url + "/info", timeout=10)

    assert emu.pending_replies == 1


# /predict and the routes mapped to it.


@pytest.mark.parametrize("path", ["/predict", "/", "/invocations"])
def test_predict__one_string_answers_one_flat_ranking_score_first(emu, path):
    response = predict(emu, "I love this movie", path=path)

    assert response.status_code == 200
    assert response.json() == tei_ranking("I love this movie")
    assert list(response.json()[0]) == ["score", "label"]
    assert math.isclose(sum(item["score"] for item in response.json()), 1.0)


def test_predict__a_list_of_two_strings_is_one_pair(emu):
    response = predict(emu, ["I love it", "I hate it"])

    assert response.json() == tei_ranking("I love it I hate it")


def test_predict__a_list_of_one_string_is_one_sequence(emu):
    assert predict(emu, ["I love it"]).json() == tei_ranking("I love it")


def test_predict__a_batch_answers_one_ranking_per_item_in_order(emu):
    response = predict(emu, [["I love it"], ["I hate it"], ["so", "good"]])

    assert response.json() == [
        tei_ranking("I love it"),
        tei_ranking("I hate it"),
        tei_ranking("so good"),
    ]


def test_predict__raw_scores_are_the_logits(emu):
    response = predict(emu, [["I love it"]], raw_scores=True)

    assert response.json() == [tei_ranking("I love it", "none")]


def test_predict__one_label_model_gets_sigmoid():
    with InferenceAPIEmulator(labels={MODEL: ["toxic"]}, tei=TEIMode()) as emu:
        response = predict(emu, "you are awful")

    assert response.json() == tei_ranking("you are awful", "sigmoid", ["toxic"])


def test_predict__parameters_are_ignored_as_unknown_fields(emu):
    response = predict(emu, "I love it", parameters={"top_k": None, "function_to_apply": "none"})

    assert response.json() == tei_ranking("I love it")


@pytest.mark.parametrize(
    "inputs",
    [["a", "b", "c"], [], [["a", "b", "c"]], [["a"], "b"], 7, ["a", 1]],
    ids=["three_strings", "empty", "item_of_three", "mixed", "number", "pair_with_number"],
)
def test_predict__inputs_of_another_shape_answer_422_plain_text(emu, inputs):
    response = predict(emu, inputs)

    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "Failed to deserialize" in response.text


def test_predict__invalid_json_400_and_missing_content_type_415(emu):
    bad_json = requests.post(
        emu.url + "/predict", data=b"{", timeout=10, headers={"Content-Type": "application/json"}
    )
    no_type = requests.post(emu.url + "/predict", data=b'{"inputs": "x"}', timeout=10)

    assert bad_json.status_code == 400
    assert no_type.status_code == 415


@pytest.mark.parametrize(("status", "version"), [(422, "1.9"), (413, "1.8")])
def test_predict__batch_over_the_limit_is_a_validation_error(emu, status, version):
    emu.tei = TEIMode(max_client_batch_size=2, validation_status=status)

    response = predict(emu, [["a"], ["b"], ["c"]])

    assert response.status_code == status
    assert response.json() == {
        "error": "batch size 3 > maximum allowed batch size 2",
        "error_type": "Validation",
    }
    assert predict(emu, [["a"], ["b"]]).status_code == 200


def test_predict__too_many_tokens_refused_only_without_truncation(emu):
    emu.tei = TEIMode(max_input_length=3, auto_truncate=False)
    long_text = "I love this very much"

    refused = predict(emu, long_text)
    truncated = predict(emu, long_text, truncate=True)

    assert refused.status_code == 422
    assert refused.json()["error"] == (
        "Input validation error: `inputs` must have less than 3 tokens. Given: 5"
    )
    assert truncated.json() == tei_ranking("I love this")


def test_predict__auto_truncate_applies_when_truncate_is_absent(emu):
    emu.tei = TEIMode(max_input_length=3)

    assert predict(emu, "I love this very much").json() == tei_ranking("I love this")
    assert predict(emu, "I love this very much", truncate=False).status_code == 422


def test_predict__api_key_refusal_has_an_empty_body():
    with InferenceAPIEmulator(token="tei-key", tei=TEIMode()) as emu:
        missing = predict(emu, "x")
        info = requests.get(emu.url + "/info", timeout=10)
        right = requests.post(
            emu.url + "/predict",
            json={"inputs": "x"},
            timeout=10,
            headers={"Authorization": "Bearer tei-key"},
        )

    assert (missing.status_code, missing.content) == (401, b"")
    assert info.status_code == 401
    assert right.status_code == 200


def test_predict__script_and_poison_apply(emu):
    emu.script(Reply.tei_error("Overloaded"), Reply.normal())
    emu.poison("bad apple", Reply.tei_error("Backend", "score is NaN"))

    overloaded = predict(emu, "x")
    normal = predict(emu, "x")
    poisoned = predict(emu, [["fine"], ["bad apple"]])

    assert (overloaded.status_code, overloaded.json()) == (
        429,
        {"error": "Model is overloaded", "error_type": "Overloaded"},
    )
    assert normal.status_code == 200
    assert (poisoned.status_code, poisoned.json()["error_type"]) == (424, "Backend")


def test_predict__logged_with_the_served_model_and_every_text(emu):
    predict(emu, [["one"], ["two", "three"]])

    (entry,) = emu.requests
    assert entry.model_id == MODEL and entry.path == "/predict"
    assert entry.inputs == ["one", "two", "three"]
    assert emu.texts_seen() == ["one", "two", "three"]


def test_predict__get_answers_405(emu):
    response = requests.get(emu.url + "/predict", timeout=10)

    assert (response.status_code, response.headers["Allow"]) == (405, "POST")


def test_models_route__still_answers_in_tei_mode(emu):
    response = requests.post(f"{emu.url}/models/{MODEL}", json={"inputs": "I love it"}, timeout=10)

    assert response.json() == [rank(LABELS, "I love it")]


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("Validation", 422),
        ("Tokenizer", 422),
        ("Backend", 424),
        ("Overloaded", 429),
        ("Unhealthy", 503),
        ("Empty", 400),
    ],
)
def test_reply_tei_error__status_of_each_error_type(error_type, status):
    reply = Reply.tei_error(error_type)

    assert reply.status == status and reply.json["error_type"] == error_type
    assert Reply.tei_error("Validation", "x", status=413).status == 413
    with pytest.raises(ValueError, match="error_type"):
        Reply.tei_error("validation")


# The Inference Toolkit shape of the model route (a dedicated endpoint).


def toolkit(emu, inputs, **parameters):
    body = {"inputs": inputs}
    if parameters:
        body["parameters"] = parameters
    return requests.post(f"{emu.url}/models/{MODEL}", json=body, timeout=10)


@pytest.fixture
def toolkit_emu():
    with InferenceAPIEmulator(shape="toolkit") as emulator:
        yield emulator


def test_toolkit__without_top_k_the_best_label_alone(toolkit_emu):
    one = toolkit(toolkit_emu, "I love it").json()
    several = toolkit(toolkit_emu, ["I love it", "I hate it"]).json()

    assert one == [rank(LABELS, "I love it")[0]]
    assert several == [rank(LABELS, "I love it")[0], rank(LABELS, "I hate it")[0]]


def test_toolkit__null_top_k_gives_every_label(toolkit_emu):
    one = toolkit(toolkit_emu, "I love it", top_k=None).json()
    several = toolkit(toolkit_emu, ["I love it", "I hate it"], top_k=None).json()

    assert one == rank(LABELS, "I love it")
    assert several == [rank(LABELS, "I love it"), rank(LABELS, "I hate it")]


def test_toolkit__a_top_k_and_a_function_are_applied(toolkit_emu):
    one = toolkit(toolkit_emu, "I love it", top_k=1, function_to_apply="sigmoid").json()
    several = toolkit(toolkit_emu, ["a", "b"], top_k=1).json()

    assert one == rank(LABELS, "I love it", "sigmoid", 1)
    assert several == [rank(LABELS, "a", None, 1), rank(LABELS, "b", None, 1)]


def test_nested_shape__still_refuses_a_null_top_k():
    with InferenceAPIEmulator() as emu:
        response = toolkit(emu, "I love it", top_k=None)

    assert response.status_code == 400


def test_cli__tei_mode_with_its_batch_limit():
    with EmulatorCLI("--tei", "--max-client-batch-size", "2") as cli:
        match = re.fullmatch(
            r"Inference API emulator listening on (http://127\.0\.0\.1:\d+) "
            r"\(route: /models/\{model_id\}, TEI: /predict, /info\)\n",
            cli.line,
        )
        assert match, cli.line
        url = match.group(1)

        info = requests.get(url + "/info", timeout=10).json()
        too_big = requests.post(
            url + "/predict", json={"inputs": [["a"], ["b"], ["c"]]}, timeout=10
        )

    assert info["max_client_batch_size"] == 2
    assert too_big.status_code == 422
    assert cli.returncode == 0, cli.stderr
