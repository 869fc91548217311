"""The Hugging Face Inference API (serverless router, dedicated endpoints, TEI).

Wire contract: ``POST {API_URL}`` with ``{"inputs": ..., "parameters": {...}}`` and
``Authorization: Bearer <token>``. A single string is answered ``[[{label, score}]]``
by the router and ``[{label, score}]`` by TEI and dedicated endpoints; a list of
inputs is answered with one ranking per input. Both shapes are accepted.
"""

import os
from urllib.parse import quote

from django.core import checks

from django_textclass import catalog
from django_textclass.backends.base import positive_number
from django_textclass.backends.http import HTTPBackend
from django_textclass.exceptions import (
    InvalidInputError,
    InvalidResponseError,
    PermanentBackendError,
    TextClassConfigurationError,
)
from django_textclass.types import Ranking, validate_model_id

DEFAULT_API_URL = "https://router.huggingface.co/hf-inference/models/{model_id}"
RETIRED_HOST = "api-inference.huggingface.co"


class Backend(HTTPBackend):
    """Classifies through the Inference API's text-classification task.

    Options (keys of the backend's ``OPTIONS``), besides those of
    :class:`~django_textclass.backends.http.HTTPBackend`:
        API_URL: URL template with ``{model_id}``, or a fixed endpoint URL used
            as is (dedicated Inference Endpoints). Default: the serverless router.
        TOKEN: the Hugging Face token; default: the ``HF_TOKEN`` environment
            variable. Never logged, never stored.
        BATCH: send several texts as one list of ``inputs`` (default True). Set it
            False for endpoints that treat a list as a text pair (TEI ``/``).
        MAX_BATCH_SIZE: the most texts per call when BATCH is on (default 32,
            TEI's default client batch limit).
    """

    def __init__(self, *, API_URL=DEFAULT_API_URL, TOKEN=None, BATCH=True, MAX_BATCH_SIZE=32,
                 **options):
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

    def __repr__(self):
        return f"<huggingface.Backend alias={self.alias!r} url={self.api_url!r}>"

    @property
    def has_token(self):
        """Whether a token is configured (the token itself is never exposed)."""
        return bool(self._token)

    def check(self):
        """``textclass.W001`` for the retired host, ``textclass.W002`` without a token."""
        messages = []
        if RETIRED_HOST in self.api_url:
            messages.append(checks.Warning(
                f"TEXTCLASS backend {self.alias!r} uses the retired host {RETIRED_HOST}, "
                "which no longer answers.",
                hint=f"Use {DEFAULT_API_URL!r}.", id="textclass.W001",
            ))
        if not self.has_token:
            messages.append(checks.Warning(
                f"TEXTCLASS backend {self.alias!r} has no Hugging Face token.",
                hint="Set the HF_TOKEN environment variable or OPTIONS['TOKEN'] "
                "(a fine-grained token with the 'Make calls to Inference Providers' permission).",
                id="textclass.W002",
            ))
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
                "nothing was sent", code="invalid_model_id",
            ) from None
        if "{model_id}" in self.api_url:
            return self.api_url.replace("{model_id}", model_path(model_id))
        return self.api_url

    def build_payload(self, texts, parameters):
        """``inputs`` is a string for one text and a list for several."""
        payload = {"inputs": texts[0] if len(texts) == 1 else list(texts)}
        params = parameters.as_payload()
        if params:
            payload["parameters"] = params
        return payload

    def build_headers(self, *, use_cache, wait_for_model):
        """Auth and the legacy cache/wait headers, each sent only when it changes something."""
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
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
        data = self.post_json(
            url,
            self.build_payload(texts, parameters),
            self.build_headers(use_cache=use_cache, wait_for_model=wait_for_model),
        )
        return parse_rankings(data, len(texts))


def model_path(model_id):
    """``owner/name`` as URL path segments, each percent-encoded (the slash kept between them).

    A valid id needs no encoding; this keeps the URL's shape should a looser id get here.
    """
    return "/".join(quote(part, safe="") for part in model_id.split("/"))


def parse_rankings(data, count):
    """Turn an answer into ``count`` rankings, whichever shape the server used.

    Accepted: ``[[{..}, ..]]`` and ``[{..}, ..]`` for one text; ``[[..], [..]]`` (one
    ranking per input) and ``[{..}, {..}]`` (the top label per input, as the
    Inference Toolkit answers by default) for several.

    Raises:
        InvalidResponseError: for any other shape, or an empty ranking.
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
    elif len(data) != count:
        raise InvalidResponseError(f"expected {count} rankings, got {len(data)}")
    elif nested:
        rankings = [Ranking.from_objects(item) for item in data]
    else:
        rankings = [Ranking.from_objects([item]) for item in data]
    if any(not ranking.scores for ranking in rankings):
        raise InvalidResponseError("a ranking is empty")
    return rankings
