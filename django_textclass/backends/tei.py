"""Text Embeddings Inference (TEI) serving a sequence-classification model: ``POST /predict``.

Wire contract (TEI 1.x): ``{"inputs": ..., "raw_scores": true, "truncate": ...}`` where one
text goes as a string and several as a list of one-item lists, ``[["t1"], ["t2"]]``. A plain
list of two strings is one *pair* of texts for TEI, never two texts, so this backend never
sends one. TEI answers one text with a flat ``[{score, label}, ...]`` and a batch with one
such list per text. It has no ``function_to_apply`` and no ``top_k``: this backend asks for
the raw logits and applies both itself, as the Inference API would
(:mod:`django_textclass.backends.scores`).

``GET /info`` gives the server's ``max_client_batch_size``: read when the batch size is first
needed, kept for :data:`INFO_TTL` seconds, and never a reason for a call to fail (the
configured ``MAX_BATCH_SIZE``, else :data:`FALLBACK_BATCH_SIZE`, stands in while it cannot be
read).

TEI's errors are ``{"error": "...", "error_type": "Validation"}``; see :meth:`Backend.error_for`
for how each maps to the pipeline's two families.
"""

import logging
import re
import threading
import time

from django_textclass.backends.base import positive_number
from django_textclass.backends.http import STATUS_ADVICE, HTTPBackend
from django_textclass.backends.scores import rank_logits
from django_textclass.exceptions import (
    BackendError,
    InvalidResponseError,
    TextClassConfigurationError,
)
from django_textclass.types import Ranking

logger = logging.getLogger("django_textclass.http")

#: TEI's own default ``--max-client-batch-size``: the batch limit while ``/info`` is unknown.
FALLBACK_BATCH_SIZE = 32
#: Seconds a read of ``/info`` is trusted; after a failed read, the next try waits this long.
INFO_TTL = 300.0
INFO_RETRY = 30.0
#: Longest wait for the ``/info`` answer, in seconds (it must not hold a worker run long).
INFO_READ_TIMEOUT = 5.0
#: TEI's refusal of a batch over its limit: "batch size 40 > maximum allowed batch size 32".
BATCH_LIMIT = re.compile(r"batch size \d+ > maximum allowed batch size (\d+)")

#: Advice for TEI's permanent statuses (it has no credits, providers or model ids).
TEI_ADVICE = {
    **STATUS_ADVICE,
    400: "TEI rejected the request",
    401: "TEI requires an API key: set API_KEY to its --api-key",
    403: "the API key is not accepted",
    404: "no TEI /predict route at this URL: set URL to the server's base URL",
    413: "the text or batch is over TEI's limits (--max-client-batch-size, --payload-limit)",
    422: "TEI could not take the input (too many tokens with truncation off?)",
    424: "the model failed on this input",
}


class Backend(HTTPBackend):
    """Classifies through a TEI server's ``/predict`` route.

    Options (keys of the backend's ``OPTIONS``), besides those of
    :class:`~django_textclass.backends.http.HTTPBackend`:
        URL: the server's base URL, e.g. ``http://tei.internal:8080`` (required).
        API_KEY: sent as ``Authorization: Bearer <key>`` (TEI's ``--api-key``, or a Hugging
            Face token for a dedicated endpoint running TEI). Never logged, never stored.
        MAX_BATCH_SIZE: the most texts per call you want; the server's own
            ``max_client_batch_size`` caps it. Default: the server's, or 32 while ``/info``
            cannot be read.
        TRUNCATE: True cuts texts over the model's token limit, False refuses them (422),
            None (default) leaves it to the server's ``--auto-truncate``.
        MULTI_LABEL: True when the model is multi-label: a request without
            ``function_to_apply`` then gets sigmoid scores, as the Inference API would
            (default False: softmax, or sigmoid for a one-label model).
    """

    supports_batch = True
    status_advice = TEI_ADVICE

    def __init__(
        self,
        *,
        URL=None,
        API_KEY=None,
        MAX_BATCH_SIZE=None,
        TRUNCATE=None,
        MULTI_LABEL=False,
        **options,
    ):
        super().__init__(**options)
        if not isinstance(URL, str) or not URL.startswith(("http://", "https://")):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: URL must be the http(s) base URL of the "
                "TEI server, e.g. 'http://tei.internal:8080'."
            )
        self.url = URL.rstrip("/")
        if self.url.endswith(("/predict", "/info")):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: URL is the server's base URL; the backend "
                "adds /predict and /info itself."
            )
        if API_KEY is not None and not isinstance(API_KEY, str):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: API_KEY must be a string."
            )
        self._api_key = API_KEY or ""
        self._secrets = (self._api_key,)
        self.configured_batch_size = (
            None
            if MAX_BATCH_SIZE is None
            else positive_number(self.alias, "MAX_BATCH_SIZE", MAX_BATCH_SIZE, int)
        )
        for name, value in (("TRUNCATE", TRUNCATE), ("MULTI_LABEL", MULTI_LABEL)):
            if value is not None and not isinstance(value, bool):
                raise TextClassConfigurationError(
                    f"TEXTCLASS backend {self.alias!r}: {name} must be True, False or None."
                )
        self.truncate = TRUNCATE
        self.multi_label = bool(MULTI_LABEL)
        self._info = None
        self._info_until = 0.0  # monotonic time after which /info is read again
        self._info_lock = threading.Lock()
        self._limit_seen = None  # a limit TEI named when it refused a batch, until /info
        self._warned_model = False

    def __repr__(self):
        return f"<tei.Backend alias={self.alias!r} url={self.url!r}>"

    # --- the server's limits ----------------------------------------------------------

    @property
    def info(self):
        """The server's ``/info`` object, or None while it cannot be read (never raises)."""
        with self._info_lock:
            if time.monotonic() >= self._info_until:
                self._info = self._read_info()
                self._info_until = time.monotonic() + (INFO_TTL if self._info else INFO_RETRY)
                if self._info:
                    self._limit_seen = None  # the server says what its limit is now
            return self._info

    def _read_info(self):
        timeout = (self.timeout[0], min(self.timeout[1], INFO_READ_TIMEOUT))
        try:
            info = self.get_json(f"{self.url}/info", self.build_headers(), timeout=timeout)
        except (BackendError, TextClassConfigurationError) as exc:
            logger.warning(
                "TEI backend %r: cannot read /info (%s); batches of at most %d "
                "texts until it can be read",
                self.alias,
                getattr(exc, "code", "configuration"),
                self._fallback_size(),
            )
            return None
        if not isinstance(info, dict):
            logger.warning("TEI backend %r: /info is not an object; ignored", self.alias)
            return None
        return info

    @property
    def server_batch_size(self):
        """``max_client_batch_size`` from ``/info`` (or from a refusal), None if unknown."""
        info = self.info
        value = info.get("max_client_batch_size") if info else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            value = None
        if self._limit_seen is not None:
            value = min(value or self._limit_seen, self._limit_seen)
        return value

    def _fallback_size(self):
        return self.configured_batch_size or FALLBACK_BATCH_SIZE

    @property
    def max_batch_size(self):
        """The most texts per call: ``MAX_BATCH_SIZE`` capped by the server's limit."""
        server = self.server_batch_size
        if server is None:
            return self._fallback_size()
        return min(self.configured_batch_size or server, server)

    # --- one call ---------------------------------------------------------------------

    def build_headers(self):
        """``Accept``, and the API key when one is configured."""
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def build_payload(self, texts):
        """One text as a string, several as ``[["t1"], ["t2"]]``; raw logits always."""
        inputs = texts[0] if len(texts) == 1 else [[text] for text in texts]
        payload = {"inputs": inputs, "raw_scores": True}
        if self.truncate is not None:
            payload["truncate"] = self.truncate
        return payload

    def classify_texts(self, texts, parameters, *, model_id, use_cache, wait_for_model):
        """One ``POST /predict`` for all ``texts``; scores computed here from the raw logits.

        ``use_cache`` and ``wait_for_model`` do not apply (TEI has neither); ``model_id``
        is not sent (a TEI server serves one model).
        """
        self._check_model(model_id)
        data = self.post_json(
            f"{self.url}/predict", self.build_payload(texts), self.build_headers()
        )
        return [
            rank_logits(logits, parameters, self.multi_label)
            for logits in parse_predictions(data, len(texts))
        ]

    def _check_model(self, model_id):
        """Warn once when requests name another model than the one the server serves."""
        info = self._info  # what was read for the batch size: no call of its own here
        served = info.get("model_id") if isinstance(info, dict) else None
        if served and served != model_id and not self._warned_model:
            self._warned_model = True
            logger.warning(
                "TEI backend %r serves %r, but requests name %r: results are "
                "stored under the name the request gave",
                self.alias,
                served,
                model_id,
            )

    def error_for(self, response):
        """TEI's errors, mapped to the pipeline's families.

        * 413 / 422 ``Validation`` or ``Tokenizer``: permanent (a batch is split to find the
          text; "batch size N > maximum allowed batch size M" also lowers this backend's
          batch size to M, and the pipeline learns a limit from the same words).
        * 424 ``Backend``: permanent; "not a classifier model" is a configuration error.
        * 429 ``Overloaded``, 503 ``Unhealthy``: transient, with the pipeline's pacing.
        * 401: permanent (the API key).
        """
        error = super().error_for(response)
        message, error_type = _tei_error(response)
        if not error_type:
            return error
        match = BATCH_LIMIT.search(message)
        if match:
            limit = int(match.group(1))
            self._limit_seen = min(self._limit_seen or limit, limit)
        if response.status_code == 424 and "not a classifier" in message.lower():
            return TextClassConfigurationError(
                f"TEI at {self.url} serves a model that is not a sequence classifier: "
                "point URL at a TEI serving a text-classification model."
            )
        error.message = f"{error.message} [{error_type}]"
        return error


def _tei_error(response):
    """``(error, error_type)`` of a TEI error body, or ``("", "")`` for any other body."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict) or not isinstance(body.get("error_type"), str):
        return "", ""
    return str(body.get("error") or ""), body["error_type"]


def parse_predictions(data, count):
    """The ``{label: raw score}`` of each of ``count`` texts from TEI's answer.

    One text is answered with a flat list, several with one list per text.

    Raises:
        InvalidResponseError: for any other shape, an item without a label or a finite
            score, or a label named twice in one prediction.
    """
    if count == 1:
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise InvalidResponseError("expected TEI's flat list of {score, label} objects")
        predictions = [data]
    else:
        if not isinstance(data, list) or not all(isinstance(item, list) for item in data):
            raise InvalidResponseError("expected TEI's list of predictions, one per text")
        if len(data) != count:
            raise InvalidResponseError(f"expected {count} predictions, got {len(data)}")
        predictions = data
    parsed = []
    for prediction in predictions:
        ranking = Ranking.from_objects(prediction)
        logits = {item.label: item.score for item in ranking.scores}
        if not logits:
            raise InvalidResponseError("a prediction is empty")
        if len(logits) != len(ranking.scores):
            raise InvalidResponseError("a prediction names a label twice")
        parsed.append(logits)
    return parsed
