"""What every backend promises the pipeline, run once per backend of ``conftest.MAKERS``.

Answers: one ranking per text, every label of the model, best first, finite scores, the
same for the same text. Batches: each text gets what it gets alone, in the order sent.
Parameters: ``none`` gives the logits, ``sigmoid`` and ``softmax`` are computed from them as
the Inference API computes them, the default is the model's, ``top_k`` keeps the best.
Errors: each way a call can fail ends in the family the pipeline acts on.
"""

import math

import pytest

from django_textclass.exceptions import InvalidResponseError, TransientBackendError
from tests.backends.contract.helpers import ERROR_KINDS, SENTIMENT

POSITIVE = "I love this, it is wonderful and great"
NEGATIVE = "I hate this, it is awful and boring"
TEXTS = [POSITIVE, NEGATIVE, "a great day", "a bad and boring day", "the best film, I loved it"]


def as_pairs(ranking):
    return [(item.label, item.score) for item in ranking.scores]


def assert_same_rankings(got, expected):
    """Same labels in the same order, scores equal up to float noise (batched inference)."""
    assert [[label for label, _ in as_pairs(r)] for r in got] == [
        [label for label, _ in as_pairs(r)] for r in expected
    ]
    for mine, theirs in zip(got, expected, strict=True):
        assert [s for _, s in as_pairs(mine)] == pytest.approx(
            [s for _, s in as_pairs(theirs)], rel=1e-5, abs=1e-6
        )


def by_label(ranking):
    return {item.label: item.score for item in ranking.scores}


# --- answers --------------------------------------------------------------------------------


def test_answer__one_ranking_of_every_label_best_first(rig):
    (ranking,) = rig.classify([POSITIVE])

    assert sorted(item.label for item in ranking.scores) == sorted(rig.maker.labels)
    scores = [item.score for item in ranking.scores]
    assert scores == sorted(scores, reverse=True)
    assert all(math.isfinite(score) for score in scores)
    assert ranking.top == ranking.scores[0]


def test_answer__same_text_same_ranking(rig):
    first = rig.classify([NEGATIVE])
    again = rig.classify([NEGATIVE])

    assert_same_rankings(again, first)


def test_answer__text_beyond_ascii(rig):
    (ranking,) = rig.classify(["Très bien, j'adore 😀 — 很好"])

    assert sorted(item.label for item in ranking.scores) == sorted(rig.maker.labels)


def test_answer__cache_and_wait_flags_are_accepted(rig):
    plain = rig.classify([POSITIVE])
    flagged = rig.classify([POSITIVE], use_cache=False, wait_for_model=True)

    assert_same_rankings(flagged, plain)


def test_answer__clear_sentiment_gets_opposite_top_labels(rig):
    rig.require(SENTIMENT)

    positive, negative = rig.classify([POSITIVE]) + rig.classify([NEGATIVE])

    assert positive.top.label == "POSITIVE" and negative.top.label == "NEGATIVE"


# --- batches --------------------------------------------------------------------------------


def test_batch__each_text_gets_its_own_ranking_in_order(rig):
    rig.require_batch()
    texts = TEXTS[: max(2, min(len(TEXTS), rig.backend.batch_size))]
    alone = [ranking for text in texts for ranking in rig.classify([text])]
    assert len({tuple(as_pairs(r)) for r in alone}) > 1, "texts chosen to rank differently"

    together = rig.classify(texts)

    assert_same_rankings(together, alone)


def test_batch__reversed_order_gives_reversed_rankings(rig):
    rig.require_batch()
    texts = TEXTS[:2] if rig.backend.batch_size >= 2 else TEXTS[:1]

    forward = rig.classify(texts)
    backward = rig.classify(list(reversed(texts)))

    assert_same_rankings(list(reversed(backward)), forward)


def test_batch__a_full_batch_is_taken_in_one_call(rig):
    rig.require_batch()
    size = rig.backend.batch_size
    texts = [f"review number {n}: {'great' if n % 2 else 'awful'}" for n in range(size)]

    rankings = rig.classify(texts)

    assert len(rankings) == size
    assert all(sorted(by_label(r)) == sorted(rig.maker.labels) for r in rankings)


# --- parameters -----------------------------------------------------------------------------


def test_parameters__none_gives_the_logits_and_sigmoid_is_computed_from_them(rig):
    (logits,) = rig.classify([POSITIVE], function_to_apply="none")
    (sigmoid,) = rig.classify([POSITIVE], function_to_apply="sigmoid")

    expected = {label: 1 / (1 + math.exp(-value)) for label, value in by_label(logits).items()}
    assert by_label(sigmoid) == pytest.approx(expected, rel=1e-6)
    assert all(0 < score < 1 for score in by_label(sigmoid).values())


def test_parameters__softmax_is_computed_from_the_logits(rig):
    (logits,) = rig.classify([NEGATIVE], function_to_apply="none")
    (softmax,) = rig.classify([NEGATIVE], function_to_apply="softmax")

    top = max(by_label(logits).values())
    exps = {label: math.exp(value - top) for label, value in by_label(logits).items()}
    expected = {label: value / sum(exps.values()) for label, value in exps.items()}
    assert by_label(softmax) == pytest.approx(expected, rel=1e-6)
    assert sum(by_label(softmax).values()) == pytest.approx(1.0)


def test_parameters__default_is_the_models_function(rig):
    (default,) = rig.classify([POSITIVE])
    (named,) = rig.classify([POSITIVE], function_to_apply=rig.maker.default_function)

    assert_same_rankings([default], [named])


@pytest.mark.parametrize("function", [None, "sigmoid", "none"])
def test_parameters__top_k_keeps_the_best(rig, function):
    (full,) = rig.classify([NEGATIVE], function_to_apply=function)
    (best,) = rig.classify([NEGATIVE], function_to_apply=function, top_k=1)
    (more,) = rig.classify([NEGATIVE], function_to_apply=function, top_k=len(rig.maker.labels) + 5)

    assert_same_rankings([best], [type(full)(full.scores[:1])])
    assert_same_rankings([more], [full])


def test_parameters__apply_to_every_text_of_a_batch(rig):
    rig.require_batch()
    texts = TEXTS[:2]
    alone = [
        r for text in texts for r in rig.classify([text], function_to_apply="sigmoid", top_k=1)
    ]

    together = rig.classify(texts, function_to_apply="sigmoid", top_k=1)

    assert_same_rankings(together, alone)
    assert all(len(ranking.scores) == 1 for ranking in together)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(ERROR_KINDS))
def test_error__ends_in_the_family_the_pipeline_acts_on(rig, kind):
    expected = ERROR_KINDS[kind]
    rig.provoke(kind)

    with pytest.raises(expected.family) as info:
        rig.classify([POSITIVE])

    error = info.value
    if expected.status is not None:
        assert error.status_code == expected.status
        assert error.code == f"http_{expected.status}"
    if expected.code is not None:
        assert error.code == expected.code
    if expected.family is not TransientBackendError:
        assert not isinstance(error, TransientBackendError)
    if expected.family is InvalidResponseError:
        assert error.code == "invalid_response"


@pytest.mark.parametrize("kind", ["rate_limited", "server_error", "input_refused"])
def test_error__the_next_call_is_answered_again(rig, kind):
    rig.provoke(kind)
    with pytest.raises(ERROR_KINDS[kind].family):
        rig.classify([POSITIVE])

    (ranking,) = rig.classify([POSITIVE])

    assert sorted(by_label(ranking)) == sorted(rig.maker.labels)
