"""What a failed call to a model most likely means, and what to do about it.

``manage.py textclass_check`` calls each configured model once; when a call fails, the error
is described as a :class:`Problem` and :func:`diagnose` finds the first row of :data:`HINTS`
whose condition it meets. A new error code (a new backend's) is one more row::

    Hint("ambiguous_response", lambda p: p.code == "ambiguous_response", "..."),

Order matters: the specific rows (the retired host, a status on a given kind of route) come
before the general ones (any 5xx, any connection error). Nothing here calls anything.
"""

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django_textclass.backends.huggingface import DEFAULT_API_URL as ROUTER
from django_textclass.backends.huggingface import RETIRED_HOST
from django_textclass.exceptions import TextClassConfigurationError, TextClassError

#: The TEI backend's dotted path.
TEI_BACKEND = "django_textclass.backends.tei.Backend"
#: Where the text-classification models deployed on hf-inference are listed.
DEPLOYED_MODELS = (
    "https://huggingface.co/models?inference_provider=hf-inference&pipeline_tag=text-classification"
)


@dataclass(frozen=True)
class Problem:
    """One failed call, as the hints read it.

    Attributes:
        code: the error's stored code (``http_404``, ``timeout``, ``connection_error``,
            ``invalid_response``, ``configuration``, ...).
        status: the HTTP status, or None.
        message: the error's message (the token already removed by the backend).
        url: where the call went (``""`` when unknown or never built).
        per_model_route: whether that URL names the model (a router-like
            ``.../models/{model_id}`` route) rather than one fixed endpoint.
        transport: for a connection error, ``"dns"`` (the name did not resolve),
            ``"refused"`` (nothing listens there), or ``""``.
        tei_host: the host answers ``GET /info`` as a Text Embeddings Inference server.
        backend: the dotted path of the backend's class (``""`` if it was never built).
    """

    code: str
    status: int = None
    message: str = ""
    url: str = ""
    per_model_route: bool = False
    transport: str = ""
    tei_host: bool = False
    backend: str = ""

    @property
    def host(self):
        """The host of :attr:`url`, lower-cased (``""`` if none)."""
        return (urlsplit(self.url).hostname or "") if self.url else ""


@dataclass(frozen=True)
class Hint:
    """One row of the table: a name, a condition on a :class:`Problem`, the likely fix."""

    name: str
    applies: object
    text: str


def _status(*statuses):
    return lambda problem: problem.status in statuses


HINTS = (
    Hint(
        "retired_host",
        lambda p: p.code == "retired_host" or p.host == RETIRED_HOST,
        f"{RETIRED_HOST} is retired (404, then 410, then gone from DNS) and never redirects: "
        f"set the backend's API_URL to {ROUTER} (or leave API_URL out, that is the default).",
    ),
    Hint(
        "unauthorized",
        _status(401),
        "The token is missing or invalid: set HF_TOKEN in the environment of the workers, or "
        "the backend's OPTIONS['TOKEN'], to a valid Hugging Face token (for your own "
        "endpoint: the key it expects).",
    ),
    Hint(
        "forbidden",
        _status(403),
        "The token lacks the 'Make calls to Inference Providers' permission: create a "
        "fine-grained token with it at https://huggingface.co/settings/tokens (or use a "
        "token of a role that has it), then set HF_TOKEN or OPTIONS['TOKEN'].",
    ),
    Hint(
        "no_credits",
        _status(402),
        "The account's Inference Providers credits are used up: add credits or a PRO plan, "
        "or bill an organisation with HEADERS {'X-HF-Bill-To': '<org>'}.",
    ),
    Hint(
        "tei_url",
        lambda p: p.status in (404, 405) and p.backend == TEI_BACKEND,
        "The TEI backend posts to <URL>/predict and reads <URL>/info: set its URL to the TEI "
        "server's base URL (without /predict), and check that a TEI server answers there.",
    ),
    Hint(
        "tei_host",
        lambda p: p.status in (404, 405) and p.tei_host,
        "The host is a Text Embeddings Inference (TEI) server (its /info answers), which has "
        "no such route: use the TEI backend (django_textclass.backends.tei.Backend) with "
        "URL set to the server's base URL; it sends batches in TEI's own form.",
    ),
    Hint(
        "not_deployed",
        lambda p: p.status == 404 and p.per_model_route,
        "The model is not deployed on the hf-inference provider (the router answers 404 "
        f"for every model it does not serve): pick one listed at {DEPLOYED_MODELS}, or "
        "deploy it on a dedicated Inference Endpoint and give that endpoint's URL as the "
        "key's MODEL (or the backend's API_URL). Check the spelling of the id too.",
    ),
    Hint(
        "wrong_route",
        lambda p: p.status in (404, 405),
        "The server has no such route at that URL: for a dedicated Inference Endpoint, use "
        "the URL the endpoint's page shows; a Text Embeddings Inference (TEI) server wants "
        "the TEI backend (django_textclass.backends.tei.Backend) with its base URL.",
    ),
    Hint(
        "gone",
        _status(410),
        f"The host answers 410 Gone: it is retired; use {ROUTER} or your endpoint's URL.",
    ),
    Hint(
        "asleep",
        lambda p: p.status == 503 or p.code == "model_loading",
        "The endpoint is asleep (scaled to zero) or its model is loading: call again in a "
        "minute, or set the backend's OPTIONS['SCALE_UP_TIMEOUT'] (seconds, sent as "
        "X-Scale-Up-Timeout) so that the proxy holds the call while a replica starts, with a "
        "READ_TIMEOUT longer than it.",
    ),
    Hint(
        "rate_limited",
        _status(429),
        "Rate limited (or, for TEI, overloaded): the workers wait and retry on their own; "
        "lower the backend's RATE_LIMIT or CALLS_IN_FLIGHT if it lasts.",
    ),
    Hint(
        "input_refused",
        _status(400, 413, 422),
        "The server refused the probe text or the parameters: check the key's PARAMETERS "
        "(function_to_apply, top_k) and whether the endpoint takes this task's payload.",
    ),
    Hint(
        "model_failed",
        _status(424),
        "The model failed on the probe text (TEI: not a classifier model?): check that the "
        "endpoint serves a text-classification model.",
    ),
    Hint(
        "dns",
        lambda p: p.code == "connection_error" and p.transport == "dns",
        "The host name does not resolve: check the URL's spelling, and the DNS (or /etc/hosts) "
        "of the machines that run the workers.",
    ),
    Hint(
        "refused",
        lambda p: p.code == "connection_error" and p.transport == "refused",
        "Connection refused: nothing listens at that address. Is the server running, and "
        "are the host and port of the URL right?",
    ),
    Hint(
        "connection",
        lambda p: p.code in ("connection_error", "request_error"),
        "The connection failed (reset, TLS, proxy): check the URL's scheme and port, and "
        "any proxy or firewall between the workers and the host.",
    ),
    Hint(
        "timeout",
        lambda p: p.code == "timeout",
        "No answer within the backend's timeouts: check the network path; for a slow model "
        "or an endpoint that scales to zero, raise READ_TIMEOUT (and LEASE_SECONDS with it).",
    ),
    Hint(
        "ambiguous_response",
        lambda p: p.code == "ambiguous_response",
        "The answer's shape cannot be told apart (one flat ranking for several texts, as "
        "TEI's / route gives): use the TEI backend for a TEI server, or set the backend's "
        "OPTIONS['BATCH'] = False.",
    ),
    Hint(
        "invalid_response",
        lambda p: p.code == "invalid_response",
        "The answer is not a text-classification ranking: the URL may lead to another task "
        "(TEI's /embed, a reranker), another server, or a proxy's page.",
    ),
    Hint(
        "invalid_model_id",
        lambda p: p.code == "invalid_model_id",
        "The model is neither a Hub repository id (owner/name) nor an endpoint URL named by "
        "a key of TEXTCLASS['MODELS'].",
    ),
    Hint(
        "configuration",
        lambda p: p.code == "configuration",
        "The configuration is wrong where the message says: fix it, then run manage.py check.",
    ),
    Hint(
        "server_error",
        lambda p: p.status is not None and p.status >= 500,
        "The server failed: the workers retry it; if it lasts, look at the endpoint's logs "
        "or status page.",
    ),
)

#: When no row applies.
FALLBACK = Hint(
    "unknown",
    lambda p: True,
    "Unexpected error: read the message; the workers would retry a transient one.",
)


def diagnose(problem):
    """The first :class:`Hint` of :data:`HINTS` that applies to ``problem`` (else FALLBACK)."""
    return next((hint for hint in HINTS if hint.applies(problem)), FALLBACK)


def problem_of(exc, url="", per_model_route=False, backend=""):
    """Describe an exception raised by a backend call as a :class:`Problem`.

    A configuration error gets the code ``configuration``; an error of ours keeps its code
    and status; anything else is ``backend_exception``, as the pipeline stores it.
    """
    if isinstance(exc, TextClassConfigurationError):
        code, status = "configuration", None
    elif isinstance(exc, TextClassError):
        code, status = exc.code, exc.status_code
    else:
        code, status = "backend_exception", None
    return Problem(
        code=code,
        status=status,
        message=str(exc) or type(exc).__name__,
        url=url,
        per_model_route=per_model_route,
        transport=transport_failure(exc),
        backend=backend,
    )


def transport_failure(exc):
    """``"dns"``, ``"refused"`` or ``""``: what lies under a connection error's chain."""
    seen, todo = set(), [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror) or type(current).__name__ == "NameResolutionError":
            return "dns"
        if isinstance(current, ConnectionRefusedError):
            return "refused"
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        todo += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
    return ""


def describe_shape(data):
    """The shape of a raw text-classification answer, in a few words.

    ``"nested [[{label, score} x2]]"`` (the router's answer to one text), ``"flat [{label,
    score} x2]"`` (TEI, a dedicated endpoint), ``"one ranking per input [[...] x3]"``, or what
    else it is.
    """
    if isinstance(data, list) and data and all(isinstance(item, list) for item in data):
        if len(data) == 1:
            return f"nested [[{{label, score}} x{len(data[0])}]]"
        return f"one ranking per input [[...] x{len(data)}]"
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        return f"flat [{{label, score}} x{len(data)}]"
    if isinstance(data, list):
        return "an empty list" if not data else "a list of mixed items"
    kinds = {
        dict: "an object",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return kinds.get(type(data), type(data).__name__)
