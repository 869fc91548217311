"""``function_to_apply`` and ``top_k`` for backends that get raw logits and score them here.

The arithmetic is the text-classification pipeline's (``transformers``), which the Inference
API runs: ``softmax`` over every label (each logit minus the largest first, so nothing
overflows), ``sigmoid`` on each logit alone, ``none`` for the logits as they are. When a
request names no function the model's own default applies: sigmoid for a model with one
label or a multi-label model, softmax otherwise.
"""

import math

from django_textclass.types import LabelScore, Ranking


def default_function(label_count, multi_label=False):
    """The function a request that names none gets: the pipeline's rule for the model.

    Args:
        label_count: how many labels the model has.
        multi_label: whether the model was trained for several labels at once
            (``problem_type = "multi_label_classification"``).
    """
    return "sigmoid" if multi_label or label_count == 1 else "softmax"


def sigmoid(value):
    """The logistic function, computed without overflow whatever the sign of ``value``."""
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    small = math.exp(value)
    return small / (1.0 + small)


def apply_function(logits, function):
    """Scores from ``{label: logit}``: ``"softmax"``, ``"sigmoid"`` or ``"none"``.

    Raises:
        ValueError: for any other function name.
    """
    if function == "none":
        return {label: float(value) for label, value in logits.items()}
    if function == "sigmoid":
        return {label: sigmoid(value) for label, value in logits.items()}
    if function == "softmax":
        top = max(logits.values())
        exps = {label: math.exp(value - top) for label, value in logits.items()}
        total = sum(exps.values())
        return {label: value / total for label, value in exps.items()}
    raise ValueError(f"unknown function_to_apply {function!r}")


def rank_logits(logits, parameters, multi_label=False):
    """The :class:`~django_textclass.types.Ranking` of ``{label: logit}`` for ``parameters``.

    ``parameters.function_to_apply`` (or the model's default) turns logits into scores;
    the ranking is sorted best first (ties by label) and cut to ``parameters.top_k``.
    """
    function = parameters.function_to_apply or default_function(len(logits), multi_label)
    scores = apply_function(logits, function)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    if parameters.top_k:
        ranked = ranked[: parameters.top_k]
    return Ranking(tuple(LabelScore(label, score) for label, score in ranked))
