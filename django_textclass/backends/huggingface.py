"""The Hugging Face Inference API: the serverless router and dedicated Inference Endpoints.

Wire contract: ``POST {API_URL}`` with ``{"inputs": ..., "parameters": {...}}`` and
``Authorization: Bearer <token>``. A single string is answered ``[[{label, score}]]``
by the router and ``[{label, score}]`` by dedicated endpoints; a list of inputs is
answered with one ranking per input. Both shapes are accepted; a flat answer to a list
that could be read two ways is refused (:func:`parse_rankings`). A TEI server has its own
backend, :mod:`django_textclass.backends.tei`.
"""

import os
from urllib.parse import quote, urlsplit

from django.core import checks

from django_textclass import catalog
from django_textclass.backends.base import positive_number
from django_textclass.backends.http import HTTPBackend
from django_textclass.exceptions import (
    InvalidInputError,
    InvalidResponseError,
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)
from django_textclass.types import Ranking, validate_model_id

DEFAULT_API_URL = "https://router.huggingface.co/hf-inference/models/{model_id}"
RETIRED_HOST = "api-inference.huggingface.co"
ROUTER_HOST = "router.huggingface.co"
#: The code of a 503 from a dedicated endpoint: a replica is starting (scaled to zero).
ENDPOINT_WAKING = "endpoint_waking"
#: The code of a flat answer to several texts that reads two ways (see parse_rankings).
AMBIGUOUS_RESPONSE = "ambiguous_response"
#: TEI's own routes: a list of two texts is one pair there, so a batch must not go as a list.
TEI_ROUTES = ("/predict", "/invocations", "/rerank")


class Backend(HTTPBackend):
    """Classifies through the Inference API's text-classification task.

    Options (keys of the backend's ``OPTIONS``), besides those of
    :class:`~django_textclass.backends.http.HTTPBackend`:
        API_URL: URL template with ``{model_id}``, or a fixed endpoint URL used
            as is (dedicated Inference Endpoints). Default: the serverless router.
        TOKEN: the Hugging Face token; default: the ``HF_TOKEN`` environment
            variable. Never logged, never stored.
        BATCH: send several texts as one list of ``inputs`` (default True).
        MAX_BATCH_SIZE: the most texts per call when BATCH is on (default 32).
        FULL_RANKING: ask for every label (``"top_k": null``) when a request sets no
            ``top_k``. None (default): only for a dedicated endpoint, whose Inference
            Toolkit otherwise answers with the best label alone.
        SCALE_UP_TIMEOUT: seconds a dedicated endpoint scaled to zero may hold a call while
            a replica starts (sent as ``X-Scale-Up-Timeout``); None (default) sends nothing.
    """

    def __init__(
        self,
        *,
        API_URL=DEFAULT_API_URL,
        TOKEN=None,
        BATCH=True,
        MAX_BATCH_SIZE=32,
        FULL_RANKING=None,
        SCALE_UP_TIMEOUT=None,
        **options,
    ):
        super().__init__(**options)
        if not isinstance(API_URL, str) or not API_URL.startswith(("http://", "https://")):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: API_URL must be an http(s) URL."
            )
        self.api_url = API_URL
        self._token = TOKEN if TOKEN is not None else os.environ.get("HF_TOKEN", "")
        self._secrets = (self._token,)
        self.supports_batch = bool(BATCH)
        self.max_batch_size = positive_number(self.alias, "MAX_BATCH_SIZE", MAX_BATCH_SIZE, int)
        if FULL_RANKING is not None and not isinstance(FULL_RANKING, bool):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: FULL_RANKING must be True, False or None."
            )
        self.full_ranking = self.is_endpoint if FULL_RANKING is None else FULL_RANKING
        self._full_ranking_guessed = FULL_RANKING is None
        self.scale_up_timeout = (
            None
            if SCALE_UP_TIMEOUT is None
            else positive_number(self.alias, "SCALE_UP_TIMEOUT", SCALE_UP_TIMEOUT, int)
        )

    @property
    def is_endpoint(self):
        """Whether ``API_URL`` is a dedicated endpoint: a fixed URL off the Hub's own hosts."""
        host = urlsplit(self.api_url).hostname or ""
        return "{model_id}" not in self.api_url and host not in (ROUTER_HOST, RETIRED_HOST)

    def __repr__(self):
        return f"<huggingface.Backend alias={self.alias!r} url={self.api_url!r}>"

    @property
    def has_token(self):
        """Whether a token is configured (the token itself is never exposed)."""
        return bool(self._token)

    def check(self):
        """``W001`` retired host, ``W002`` no token, ``W008`` read timeout, ``W009`` TEI route."""
        messages = []
        if RETIRED_HOST in self.api_url:
            messages.append(
                checks.Warning(
                    f"TEXTCLASS backend {self.alias!r} uses the retired host {RETIRED_HOST}, "
                    "which no longer answers.",
                    hint=f"Use {DEFAULT_API_URL!r}.",
                    id="textclass.W001",
                )
            )
        if not self.has_token:
            messages.append(
                checks.Warning(
                    f"TEXTCLASS backend {self.alias!r} has no Hugging Face token.",
                    hint="Set the HF_TOKEN environment variable or OPTIONS['TOKEN'] (a "
                    "fine-grained token with the 'Make calls to Inference Providers' "
                    "permission).",
                    id="textclass.W002",
                )
            )
        if self.scale_up_timeout is not None and self.timeout[1] <= self.scale_up_timeout:
            messages.append(
                checks.Warning(
                    f"TEXTCLASS backend {self.alias!r}: READ_TIMEOUT ({self.timeout[1]:g} s) "
                    f"is not longer than SCALE_UP_TIMEOUT ({self.scale_up_timeout} s), so the "
                    "client gives up while the endpoint may still be holding the call for a "
                    "starting replica.",
                    hint=f"Set READ_TIMEOUT above SCALE_UP_TIMEOUT, e.g. "
                    f"{self.scale_up_timeout + 30}.",
                    id="textclass.W008",
                )
            )
        path = urlsplit(self.api_url).path.rstrip("/")
        if self.supports_batch and path.endswith(TEI_ROUTES):
            messages.append(
                checks.Warning(
                    f"TEXTCLASS backend {self.alias!r}: API_URL ends with a TEI route ({path}), "
                    "where a list of two texts is one pair of texts, not a batch.",
                    hint="Use 'django_textclass.backends.tei.Backend' with URL set to the server's "
                    "base URL (it batches the way TEI expects), or set BATCH to False.",
                    id="textclass.W009",
                )
            )
        return messages

    def endpoint(self, model_id):
        """The URL to POST to for ``model_id``.

        A model id that is an endpoint URL (a key's ``MODEL`` in ``TEXTCLASS["MODELS"]``) is
        that URL, used as is, with this backend's token and options.

        Raises:
            PermanentBackendError: (code ``invalid_model_id``) ``model_id`` is not a Hub
                repository id, nor an endpoint URL the site's own registry names: whatever
                stored it, it must not steer the URL (``..``, ``?``, ``#``, another host),
                so the call is never made.
        """
        if catalog.is_endpoint_url(model_id) and catalog.may_send(model_id):
            return model_id
        try:
            validate_model_id(model_id)
        except InvalidInputError:
            raise PermanentBackendError(
                "the model id is not a valid Hugging Face repository id (owner/name); "
                "nothing was sent",
                code="invalid_model_id",
            ) from None
        if "{model_id}" in self.api_url:
            return self.api_url.replace("{model_id}", model_path(model_id))
        return self.api_url

    def build_payload(self, texts, parameters, *, full_ranking=None):
        """``inputs`` is a string for one text and a list for several.

        With ``FULL_RANKING`` on, a request that sets no ``top_k`` sends ``"top_k": null``:
        the transformers pipeline behind a dedicated endpoint then returns every label
        (its default is the best one alone), and one ranking per text for a list.
        ``full_ranking`` decides it for this call instead (a key's endpoint URL).
        """
        payload = {"inputs": texts[0] if len(texts) == 1 else list(texts)}
        params = parameters.as_payload()
        full_ranking = self.full_ranking if full_ranking is None else full_ranking
        if full_ranking and parameters.top_k is None:
            params["top_k"] = None
        if params:
            payload["parameters"] = params
        return payload

    def build_headers(self, *, use_cache, wait_for_model):
        """Auth, the scale-up wait, and the legacy cache/wait headers when they change something."""
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self.scale_up_timeout is not None:
            headers["X-Scale-Up-Timeout"] = str(self.scale_up_timeout)
        if not use_cache:
            headers["x-use-cache"] = "false"
        if wait_for_model:
            headers["x-wait-for-model"] = "true"
        return headers

    def classify_texts(self, texts, parameters, *, model_id, use_cache, wait_for_model):
        """One POST for all ``texts``; see :meth:`BaseBackend.classify`."""
        url = self.endpoint(model_id)
        if RETIRED_HOST in url:
            # It no longer answers at all (404, then 410, then no DNS): retrying is pointless.
            raise PermanentBackendError(
                f"{RETIRED_HOST} is retired; set API_URL to {DEFAULT_API_URL!r}",
                code="retired_host",
            )
        # A key's endpoint URL is a dedicated endpoint whatever API_URL says: the whole
        # ranking is asked for (unless FULL_RANKING says otherwise), a 503 means it is waking.
        keyed_endpoint = catalog.is_endpoint_url(model_id)
        full_ranking = True if keyed_endpoint and self._full_ranking_guessed else None
        try:
            data = self.post_json(
                url,
                self.build_payload(texts, parameters, full_ranking=full_ranking),
                self.build_headers(use_cache=use_cache, wait_for_model=wait_for_model),
            )
        except TransientBackendError as exc:
            if keyed_endpoint and exc.status_code == 503 and exc.code != ENDPOINT_WAKING:
                raise waking(exc) from exc
            raise
        return parse_rankings(data, len(texts))

    def error_for(self, response):
        """As :class:`HTTPBackend` does; a 503 from a dedicated endpoint means it is waking.

        An endpoint scaled to zero answers 503 while a replica starts, usually with no delay
        hint: code ``endpoint_waking``, which the pipeline waits out (``RATE_LIMIT_WAIT``
        unless the server gave a hint) without spending attempts, as for a model loading.
        """
        error = super().error_for(response)
        if response.status_code == 503 and self.is_endpoint:
            return waking(error)
        return error


def waking(error):
    """A dedicated endpoint's 503 as the transient error ``endpoint_waking``."""
    return TransientBackendError(
        f"{error.message} (the endpoint is starting a replica)",
        code=ENDPOINT_WAKING,
        status_code=503,
        retry_after=error.retry_after,
        model_loading=True,
    )


def model_path(model_id):
    """``owner/name`` as URL path segments, each percent-encoded (the slash kept between them).

    A valid id needs no encoding; this keeps the URL's shape should a looser id get here.
    """
    return "/".join(quote(part, safe="") for part in model_id.split("/"))


def parse_rankings(data, count):
    """Turn an answer into ``count`` rankings, whichever shape the server used.

    Accepted: ``[[{..}, ..]]`` and ``[{..}, ..]`` for one text; ``[[..], [..]]`` (one
    ranking per input) for several; and for several, a flat ``[{..}, {..}]`` that holds
    one item per text and names some label twice: the best label of each text, as the
    Inference Toolkit answers a list by default (one ranking never names a label twice).

    A flat list of ``count`` items with ``count`` different labels is refused: it may
    just as well be one ranking of a single input (TEI reads a list of two texts as one
    pair, and ranks that pair over a two-label model's two labels).

    Raises:
        InvalidResponseError: for any other shape, or an empty ranking; with the code
            ``ambiguous_response`` for the flat list that reads two ways.
    """
    if isinstance(data, dict):
        raise InvalidResponseError("expected a list of rankings, got an object")
    if not isinstance(data, list) or not data:
        raise InvalidResponseError("expected a non-empty list of rankings")
    nested = all(isinstance(item, list) for item in data)
    if count == 1:
        if nested and len(data) != 1:
            raise InvalidResponseError(f"expected 1 ranking, got {len(data)}")
        rankings = [Ranking.from_objects(data[0] if nested else data)]
    elif nested:
        if len(data) != count:
            raise InvalidResponseError(f"expected {count} rankings, got {len(data)}")
        rankings = [Ranking.from_objects(item) for item in data]
    else:
        rankings = _best_label_of_each(data, count)
    if any(not ranking.scores for ranking in rankings):
        raise InvalidResponseError("a ranking is empty")
    return rankings


def _best_label_of_each(data, count):
    """A flat answer to ``count`` texts as the best label of each, when nothing else fits."""
    rankings = [Ranking.from_objects([item]) for item in data]
    if len(data) != count:
        raise InvalidResponseError(
            f"expected {count} rankings, got one flat list of {len(data)} labels: the endpoint "
            "ranked the list as one input (TEI reads two texts as a pair); use the TEI backend "
            "or set BATCH to False"
        )
    labels = {ranking.top.label for ranking in rankings}
    if len(labels) == count:
        raise InvalidResponseError(
            f"a flat list of {count} labels for {count} texts reads two ways: one ranking of "
            "the whole list (TEI reads two texts as a pair) or the best label of each text (the "
            "Inference Toolkit); refused rather than guessed. Use the TEI backend for TEI, or "
            "set BATCH to False",
            code=AMBIGUOUS_RESPONSE,
        )
    return rankings
