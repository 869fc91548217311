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

import threading

from django_textclass.backends.base import BaseBackend
from django_textclass.backends.scores import apply_function, rank_logits
from django_textclass.exceptions import TextClassConfigurationError

__all__ = ["LOGIT_SCALE", "Backend", "apply_function"]

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
        return rank_logits(logits, parameters)
