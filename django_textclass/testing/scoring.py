"""The emulator's deterministic labelling rule. It is NOT a model.

The loopback emulator needs answers that look like a text classifier's (every
label with a score, sorted, shaped by ``function_to_apply`` and ``top_k``) and
that tests can predict. They need not be right. This rule supplies them:

* Sentiment labels (the set ``{"POSITIVE", "NEGATIVE"}``): the text is split
  into lower-case word tokens (``re.findall(r"[a-z']+")``). Each word from a
  short built-in positive list counts +1, each word from the negative list
  counts -1. A negator (``not``, ``never``, ``no``, or a word ending in
  ``n't``) flips the polarity of the word right after it. Then
  ``logit_pos = 1.5 * (pos - neg) + 0.1`` and ``logit_neg = -logit_pos``, so
  a text with no sentiment words leans slightly POSITIVE.
* Any other label set: the logit of ``(label, text)`` is a value in
  ``[-4, 4]`` taken from the SHA-256 of the label, a NUL byte and the text.

Logits then go through ``function_to_apply``: ``"softmax"`` (the default when
there is more than one label), ``"sigmoid"`` (the default for a single label)
or ``"none"`` (raw logits). The ranking is sorted by score, highest first,
ties broken by label, and cut to ``top_k`` when it is given. The same text
always gets the same answer.
"""

import hashlib
import math
import re

__all__ = [
    "DEFAULT_LABELS",
    "FUNCTIONS",
    "NEGATIVE_WORDS",
    "POSITIVE_WORDS",
    "logits",
    "rank",
]

DEFAULT_LABELS = ("POSITIVE", "NEGATIVE")
FUNCTIONS = ("sigmoid", "softmax", "none")

POSITIVE_WORDS = frozenset(
    {
        "love",
        "loved",
        "loves",
        "like",
        "liked",
        "likes",
        "great",
        "good",
        "excellent",
        "happy",
        "wonderful",
        "amazing",
        "best",
        "awesome",
        "fantastic",
        "nice",
        "perfect",
        "brilliant",
        "enjoy",
        "enjoyed",
        "delightful",
        "superb",
        "beautiful",
        "fun",
        "pleasant",
        "glad",
        "favorite",
        "recommend",
        "outstanding",
        "lovely",
        "cool",
        "impressive",
    }
)
NEGATIVE_WORDS = frozenset(
    {
        "hate",
        "hated",
        "hates",
        "bad",
        "terrible",
        "awful",
        "worst",
        "horrible",
        "boring",
        "meh",
        "poor",
        "sad",
        "disappointing",
        "disappointed",
        "ugly",
        "annoying",
        "useless",
        "broken",
        "waste",
        "dislike",
        "mediocre",
        "dull",
        "angry",
        "slow",
        "painful",
        "nasty",
        "pathetic",
        "lame",
        "fail",
        "failed",
        "worse",
    }
)
_NEGATORS = frozenset({"not", "never", "no"})
_TOKEN = re.compile(r"[a-z']+")


def _sentiment_logits(text):
    pos = neg = 0
    negate = False
    for token in _TOKEN.findall(text.lower()):
        if token in _NEGATORS or token.endswith("n't"):
            negate = True
            continue
        if token in POSITIVE_WORDS:
            if negate:
                neg += 1
            else:
                pos += 1
        elif token in NEGATIVE_WORDS:
            if negate:
                pos += 1
            else:
                neg += 1
        # A negator reaches only the next word ("not very good" stays positive).
        negate = False
    logit_pos = 1.5 * (pos - neg) + 0.1
    return {"POSITIVE": logit_pos, "NEGATIVE": -logit_pos}


def _hashed_logit(label, text):
    digest = hashlib.sha256(f"{label}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 8.0 - 4.0


def logits(labels, text):
    """Return the raw logit of every label for ``text``.

    Args:
        labels: The model's labels.
        text: The input text.

    Returns:
        A dict from label to logit, in the order of ``labels``.
    """
    if set(labels) == set(DEFAULT_LABELS) and len(labels) == 2:
        sentiment = _sentiment_logits(text)
        return {label: sentiment[label] for label in labels}
    return {label: _hashed_logit(label, text) for label in labels}


def _sigmoid(x):
    # Two branches so that exp() never overflows on large logits.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def rank(
    labels,
    text,
    function_to_apply=None,
    top_k=None,
):
    """Classify ``text`` with the rule and return a ranking.

    Args:
        labels: The model's labels (at least one).
        text: The input text.
        function_to_apply: ``"softmax"``, ``"sigmoid"`` or ``"none"``; None
            picks softmax for several labels and sigmoid for one.
        top_k: Keep only this many entries; None keeps every label.

    Returns:
        ``[{"label": str, "score": float}, ...]`` sorted by score, highest
        first, ties broken by label.

    Raises:
        ValueError: If ``labels`` is empty or ``function_to_apply`` is unknown.
    """
    if not labels:
        raise ValueError("a model needs at least one label")
    if function_to_apply is None:
        function_to_apply = "softmax" if len(labels) > 1 else "sigmoid"
    if function_to_apply not in FUNCTIONS:
        raise ValueError(f"unknown function_to_apply {function_to_apply!r}")
    raw = logits(labels, text)
    names = list(raw)
    values = [raw[name] for name in names]
    if function_to_apply == "softmax":
        scores = _softmax(values)
    elif function_to_apply == "sigmoid":
        scores = [_sigmoid(v) for v in values]
    else:
        scores = [float(v) for v in values]
    ranking = sorted(zip(names, scores, strict=True), key=lambda pair: (-pair[1], pair[0]))
    if top_k is not None:
        ranking = ranking[:top_k]
    return [{"label": name, "score": float(score)} for name, score in ranking]
