"""Plain values crossing the backend boundary: model ids, parameters, rankings."""

import pytest

from django_textclass.exceptions import InvalidInputError, InvalidResponseError
from django_textclass.types import (
    FUNCTIONS_TO_APPLY,
    LabelScore,
    Parameters,
    Ranking,
    validate_model_id,
)

# validate_model_id


@pytest.mark.parametrize(
    "model_id",
    [
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "gpt2",
        "ProsusAI/finbert",
        "cardiffnlp/twitter-roberta-base-sentiment-latest",
        "meta-llama/Prompt-Guard-86M",
        "a",
        "a/b",
        "owner_1/model.v2",
        "a" * 96,
        f"{'o' * 96}/{'m' * 96}",
    ],
)
def test_validate_model_id__valid(model_id):
    assert validate_model_id(model_id) == model_id


@pytest.mark.parametrize(
    "model_id",
    [
        "../admin",
        "http://x/y",
        "https://router.huggingface.co/hf-inference/models/gpt2",
        "a b",
        "a/b/c",
        "",
        "-abc",
        "abc-",
        ".abc",
        "a..b",
        "owner/a..b",
        "/gpt2",
        "gpt2/",
        "a" * 97,
        f"owner/{'m' * 97}",
        f"{'o' * 97}/model",
        "gpt2?x=1",
        "gpt2#frag",
        "owner\\model",
        "gpt2 ",
        " gpt2",
    ],
)
def test_validate_model_id__invalid(model_id):
    with pytest.raises(InvalidInputError) as info:
        validate_model_id(model_id)

    assert info.value.field == "model"
    assert info.value.code == "invalid_input"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("model_id", [None, 42, b"gpt2", ["gpt2"]])
def test_validate_model_id__non_str(model_id):
    with pytest.raises(InvalidInputError, match="^model: "):
        validate_model_id(model_id)


@pytest.mark.parametrize("model_id", ["gpt2\n", "ProsusAI/finbert\n"])
def test_validate_model_id__trailing_newline_is_invalid(model_id):
    with pytest.raises(InvalidInputError):
        validate_model_id(model_id)


# Parameters


def test_parameters__defaults_are_none():
    parameters = Parameters()

    assert parameters.function_to_apply is None
    assert parameters.top_k is None


@pytest.mark.parametrize("function", ["sigmoid", "softmax", "none", None])
def test_parameters__function_to_apply_valid(function):
    assert Parameters(function_to_apply=function).function_to_apply == function


def test_parameters__functions_to_apply_are_the_spec_enum():
    assert FUNCTIONS_TO_APPLY == ("sigmoid", "softmax", "none")


@pytest.mark.parametrize("function", ["Softmax", "relu", "", "None", 1, ["softmax"]])
def test_parameters__function_to_apply_invalid(function):
    with pytest.raises(InvalidInputError) as info:
        Parameters(function_to_apply=function)

    assert info.value.field == "function_to_apply"
    assert "sigmoid, softmax, none" in str(info.value)


@pytest.mark.parametrize("top_k", [1, 2, 1000, None])
def test_parameters__top_k_valid(top_k):
    assert Parameters(top_k=top_k).top_k == top_k


@pytest.mark.parametrize("top_k", [True, False, 0, -1, 1001, "3", 3.0, 2.5])
def test_parameters__top_k_invalid(top_k):
    with pytest.raises(InvalidInputError) as info:
        Parameters(top_k=top_k)

    assert info.value.field == "top_k"
    assert str(info.value) == "top_k: must be an integer from 1 to 1000"


def test_parameters__are_frozen_and_hashable():
    parameters = Parameters(function_to_apply="sigmoid", top_k=2)

    with pytest.raises(AttributeError):
        parameters.top_k = 3
    assert hash(parameters) == hash(Parameters(function_to_apply="sigmoid", top_k=2))


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (Parameters(), {}),
        (Parameters(function_to_apply="none"), {"function_to_apply": "none"}),
        (Parameters(top_k=5), {"top_k": 5}),
        (
            Parameters(function_to_apply="sigmoid", top_k=1),
            {"function_to_apply": "sigmoid", "top_k": 1},
        ),
    ],
)
def test_parameters__as_payload_omits_unset_keys(parameters, expected):
    assert parameters.as_payload() == expected


# LabelScore and Ranking


def test_label_score__as_dict():
    assert LabelScore("POSITIVE", 0.9).as_dict() == {"label": "POSITIVE", "score": 0.9}


def test_ranking__from_objects_sorts_best_first_then_by_label():
    ranking = Ranking.from_objects(
        [
            {"label": "b", "score": 0.25},
            {"label": "c", "score": 0.5},
            {"label": "a", "score": 0.25},
        ]
    )

    assert ranking.as_list() == [
        {"label": "c", "score": 0.5},
        {"label": "a", "score": 0.25},
        {"label": "b", "score": 0.25},
    ]
    assert ranking.top == LabelScore("c", 0.5)


def test_ranking__from_objects_ignores_extra_keys_and_converts_ints():
    ranking = Ranking.from_objects([{"label": "A", "score": 1, "index": 0}])

    assert ranking.scores == (LabelScore("A", 1.0),)
    assert type(ranking.scores[0].score) is float


def test_ranking__from_objects_empty_list_is_an_empty_ranking():
    ranking = Ranking.from_objects([])

    assert ranking.scores == ()
    assert ranking.top is None
    assert ranking.as_list() == []


@pytest.mark.parametrize(
    ("objects", "words"),
    [
        ({"label": "A", "score": 1.0}, "expected a list"),
        ("A", "expected a list"),
        (None, "expected a list"),
        (["A"], "expected a {label, score} object"),
        ([[{"label": "A", "score": 1.0}]], "expected a {label, score} object"),
        ([{"score": 0.5}], "no string label"),
        ([{"label": None, "score": 0.5}], "no string label"),
        ([{"label": "", "score": 0.5}], "no string label"),
        ([{"label": 1, "score": 0.5}], "no string label"),
        ([{"label": "A"}], "no finite numeric score"),
        ([{"label": "A", "score": "0.5"}], "no finite numeric score"),
        ([{"label": "A", "score": True}], "no finite numeric score"),
        ([{"label": "A", "score": float("nan")}], "no finite numeric score"),
        ([{"label": "A", "score": float("-inf")}], "no finite numeric score"),
    ],
)
def test_ranking__from_objects_rejects_bad_items(objects, words):
    with pytest.raises(InvalidResponseError, match=words) as info:
        Ranking.from_objects(objects)

    assert info.value.code == "invalid_response"
