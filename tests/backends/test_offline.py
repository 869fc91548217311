"""The offline VADER backend: no network, no token, the Inference API's answer shape."""

import math

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from django_textclass.backends.offline import LOGIT_SCALE, Backend, apply_function
from django_textclass.types import Parameters, Ranking
from tests.backends.helpers import MODEL, block_network

POSITIVE_TEXT = "I love this movie, it is wonderful and the acting is great!"
NEGATIVE_TEXT = "This is terrible. I hate it, the worst film I have ever seen."
TEXTS = [POSITIVE_TEXT, NEGATIVE_TEXT, "The train leaves at noon."]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    block_network(monkeypatch)


@pytest.fixture(scope="module")
def backend():
    return Backend(alias="offline")


def compound(text):
    return SentimentIntensityAnalyzer().polarity_scores(text)["compound"]


def one(backend, text, parameters=None):
    (ranking,) = backend.classify([text], parameters or Parameters(), model_id=MODEL)
    return ranking


def scores_by_label(ranking):
    return {item.label: item.score for item in ranking.scores}


@pytest.mark.parametrize(
    ("text", "expected_top"), [(POSITIVE_TEXT, "POSITIVE"), (NEGATIVE_TEXT, "NEGATIVE")]
)
def test_rank__sentiment_ranks_as_expected(backend, text, expected_top):
    ranking = one(backend, text)

    assert isinstance(ranking, Ranking)
    assert [item.label for item in ranking.scores][0] == expected_top
    assert {item.label for item in ranking.scores} == {"POSITIVE", "NEGATIVE"}
    assert ranking.top.score > 0.9


@pytest.mark.parametrize("function", [None, "softmax"], ids=["default", "softmax"])
@pytest.mark.parametrize("text", TEXTS)
def test_rank__softmax_sums_to_one(backend, text, function):
    ranking = one(backend, text, Parameters(function_to_apply=function))

    assert math.isclose(sum(item.score for item in ranking.scores), 1.0, rel_tol=1e-9)
    assert ranking.scores[0].score >= ranking.scores[1].score


@pytest.mark.parametrize("text", TEXTS)
def test_rank__sigmoid_scores_are_in_open_unit_interval(backend, text):
    ranking = one(backend, text, Parameters(function_to_apply="sigmoid"))

    scores = scores_by_label(ranking)
    assert all(0.0 < score < 1.0 for score in scores.values())
    assert math.isclose(scores["POSITIVE"], 1 / (1 + math.exp(-LOGIT_SCALE * compound(text))))


@pytest.mark.parametrize("text", [POSITIVE_TEXT, NEGATIVE_TEXT])
def test_rank__none_gives_plus_minus_four_compound_logits(backend, text):
    ranking = one(backend, text, Parameters(function_to_apply="none"))

    c = compound(text)
    assert LOGIT_SCALE == 4.0
    assert scores_by_label(ranking) == {"POSITIVE": 4 * c, "NEGATIVE": -4 * c}
    assert ranking.scores[0].score == abs(4 * c)


@pytest.mark.parametrize(
    ("text", "expected"), [(POSITIVE_TEXT, "POSITIVE"), (NEGATIVE_TEXT, "NEGATIVE")]
)
def test_rank__top_k_1_keeps_the_best_label(backend, text, expected):
    ranking = one(backend, text, Parameters(top_k=1))

    assert [item.label for item in ranking.scores] == [expected]


def test_rank__top_k_above_label_count_keeps_both(backend):
    assert len(one(backend, POSITIVE_TEXT, Parameters(top_k=5)).scores) == 2


def test_rank__neutral_text_ties_at_one_half(backend):
    ranking = one(backend, "The train leaves at noon.")

    assert compound("The train leaves at noon.") == 0.0
    assert [item.score for item in ranking.scores] == [0.5, 0.5]


def test_classify__batch_returns_one_ranking_per_text_in_order(backend):
    rankings = backend.classify(TEXTS, Parameters(), model_id=MODEL)

    assert len(rankings) == len(TEXTS)
    assert rankings[0].top.label == "POSITIVE"
    assert rankings[1].top.label == "NEGATIVE"
    assert rankings == [one(backend, text) for text in TEXTS]


def test_classify__ignores_model_id_and_flags(backend):
    rankings = backend.classify(
        [POSITIVE_TEXT],
        Parameters(),
        model_id="ProsusAI/finbert",
        use_cache=False,
        wait_for_model=True,
    )

    assert rankings == [one(backend, POSITIVE_TEXT)]


def test_backend__supports_large_batches():
    backend = Backend()

    assert backend.supports_batch is True
    assert backend.batch_size == 256
    assert not hasattr(backend, "session")


def test_backend__works_with_no_network(monkeypatch):
    # The autouse fixture makes every connect/DNS call fail; a fresh instance loads the lexicon.
    backend = Backend()

    rankings = backend.classify([POSITIVE_TEXT, NEGATIVE_TEXT], Parameters(), model_id=MODEL)

    assert [r.top.label for r in rankings] == ["POSITIVE", "NEGATIVE"]


def test_apply_function__values():
    logits = {"A": 2.0, "B": -2.0}

    assert apply_function(logits, "none") == logits
    softmax = apply_function(logits, "softmax")
    assert math.isclose(softmax["A"], 1 / (1 + math.exp(-4.0)))
    assert math.isclose(softmax["A"] + softmax["B"], 1.0)
    assert math.isclose(apply_function(logits, "sigmoid")["B"], 1 / (1 + math.exp(2.0)))
