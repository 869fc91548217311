"""Lexicon sentiment with no network and no downloads, for demos and offline work.

It scores English sentiment with VADER (the ``vaderSentiment`` package, which
ships its lexicon), whatever model id a request names, and answers in the
Inference API's own shape with the labels of the default SST-2 model,
``POSITIVE`` and ``NEGATIVE``. It is a rule-based scorer, not a transformer:
it knows nothing of toxicity, topics or languages, and its scores are not
calibrated probabilities. Install it with ``pip install django-textclass[offline]``.

How the scores are made: VADER's ``compound`` value *c* (from -1 to 1) gives the
logits ``4c`` for POSITIVE and ``-4c`` for NEGATIVE; ``function_to_apply``
then works as in the API (softmax by default, sigmoid per label, or the raw
logits for ``none``), and ``top_k`` keeps the best K.
"""

import math
import threading

from django_textclass.backends.base import BaseBackend
from django_textclass.exceptions import TextClassConfigurationError
from django_textclass.types import LabelScore, Ranking

LOGIT_SCALE = 4.0


class Backend(BaseBackend):
    """Offline English sentiment (VADER), answering POSITIVE / NEGATIVE."""

    supports_batch = True
    max_batch_size = 256

    def __init__(self, **options):
        super().__init__(**options)
        self._analyzer = None
        self._lock = threading.Lock()

    @property
    def analyzer(self):
        """VADER's analyzer, loaded on first use (it reads its lexicon file)."""
        with self._lock:
            if self._analyzer is None:
                try:
                    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
                except ImportError as exc:
                    raise TextClassConfigurationError(
                        "The offline backend needs vaderSentiment: "
                        "pip install 'django-textclass[offline]'"
                    ) from exc
                self._analyzer = SentimentIntensityAnalyzer()
            return self._analyzer

    def classify_texts(self, texts, parameters, *, model_id, use_cache, wait_for_model):
        """Rank each text in process; ``model_id`` and the cache flags do not apply."""
        return [self.rank(text, parameters) for text in texts]

    def rank(self, text, parameters):
        """The ranking of one text (see the module docstring for the rule)."""
        compound = self.analyzer.polarity_scores(text)["compound"]
        logits = {"POSITIVE": LOGIT_SCALE * compound, "NEGATIVE": -LOGIT_SCALE * compound}
        scores = apply_function(logits, parameters.function_to_apply or "softmax")
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        if parameters.top_k:
            ranked = ranked[: parameters.top_k]
        return Ranking(tuple(LabelScore(label, score) for label, score in ranked))


def apply_function(logits, function):
    """Turn ``{label: logit}`` into scores with softmax, sigmoid or none."""
    if function == "none":
        return dict(logits)
    if function == "sigmoid":
        return {label: 1.0 / (1.0 + math.exp(-value)) for label, value in logits.items()}
    top = max(logits.values())
    exps = {label: math.exp(value - top) for label, value in logits.items()}
    total = sum(exps.values())
    return {label: value / total for label, value in exps.items()}
