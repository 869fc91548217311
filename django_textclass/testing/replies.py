"""What the emulator answers: scripted replies and the log of received requests.

``Reply`` describes one scripted answer (``Reply.loading()``, ``Reply.rate_limited()``,
...); ``ReceivedRequest`` is one entry of the emulator's request log. Standard
library only.
"""

import dataclasses
import json
import math
from http import HTTPStatus

__all__ = ["ReceivedRequest", "Reply", "has_header", "json_answer", "plain_answer", "render"]

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_HTML = "text/html; charset=utf-8"
# (status, headers, body) of one answer.
_REPLY_KEYS = frozenset({"status", "json", "headers", "body", "delay", "normal"})


def _fill(value, fields):
    """``value`` with each ``{name}`` of ``fields`` replaced, in strings at any depth."""
    if isinstance(value, str):
        for name, text in fields.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, list):
        return [_fill(item, fields) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, fields) for key, item in value.items()}
    return value


@dataclasses.dataclass
class Reply:
    """One scripted answer, consumed by one classification request.

    ``body`` (raw text) wins over ``json``; with neither the body is empty.
    ``{model_id}`` inside ``body``, inside a string of ``json`` or in a header value
    is replaced by the requested model id, and ``{authorization}`` by the request's
    ``Authorization`` header as it came (a server that echoes credentials, for tests
    that prove the client never repeats them). ``delay`` seconds are slept first. With
    ``passthrough=True`` the request then gets the normal answer instead (the
    JSON form calls this key ``normal``; a ``normal`` field could not coexist
    with the ``Reply.normal()`` constructor).
    """

    status: int = 200
    json: object = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: str | None = None
    delay: float = 0.0
    passthrough: bool = False

    @classmethod
    def normal(cls):
        """Let one request through to the normal answer (e.g. in the middle of a script)."""
        return cls(passthrough=True)

    @classmethod
    def loading(cls, estimated_time=20.0):
        """503 "Model ... is currently loading" with ``estimated_time`` (legacy cold start)."""
        message = "Model {model_id} is currently loading"
        return cls(503, {"error": message, "estimated_time": float(estimated_time)})

    @classmethod
    def rate_limited(cls, retry_after=1, ratelimit=None):
        """429 "Rate limit reached", with ``Retry-After`` and optionally ``RateLimit``.

        Args:
            retry_after: Seconds for ``Retry-After`` (rounded up); None omits it.
            ratelimit: ``(remaining, reset_secs)`` for ``RateLimit: "api";r=..;t=..``.
        """
        headers = {}
        if retry_after is not None:
            # Retry-After carries whole delay-seconds; round up so a client never retries early.
            headers["Retry-After"] = str(math.ceil(retry_after))
        if ratelimit is not None:
            remaining, reset = ratelimit
            headers["RateLimit"] = f'"api";r={remaining};t={math.ceil(reset)}'
        return cls(
            429,
            {"error": "Rate limit reached. You reached free usage limit (reset hourly)."},
            headers,
        )

    @classmethod
    def server_error(cls, status=500):
        """A 5xx: HTML for 502 and 504 (gateways), else ``{"error": "unknown error"}``."""
        if status in (502, 504):
            phrase = f"{status} {HTTPStatus(status).phrase}"
            page = f"<html><body><h1>{phrase}</h1></body></html>"
            return cls(status, headers={"Content-Type": _HTML}, body=page)
        return cls(status, {"error": "unknown error"})

    @classmethod
    def unavailable(cls):
        """503 "Service Temporarily Unavailable", without ``estimated_time``."""
        return cls(503, {"error": "Service Temporarily Unavailable"})

    @classmethod
    def malformed(cls):
        """200 whose body claims to be JSON but does not parse."""
        return cls(200, headers={"Content-Type": _JSON}, body='{"not": "a ranking"')

    @classmethod
    def wrong_shape(cls):
        """200 with valid JSON that is not a ranking."""
        return cls(200, {"label": "X"})

    @classmethod
    def error(cls, status, message):
        """``status`` with ``{"error": message}``."""
        return cls(status, {"error": message})

    @classmethod
    def tei_error(cls, error_type, message=None, status=None):
        """A TEI error body, ``{"error": message, "error_type": error_type}``.

        ``error_type`` is one of TEI's (``"Validation"``, ``"Tokenizer"``, ``"Backend"``,
        ``"Overloaded"``, ``"Unhealthy"``, ``"Empty"``); the status is TEI's for it (422 for
        ``Validation``: pass ``status=413`` for TEI 1.8 and older).
        """
        statuses = {
            "Unhealthy": 503,
            "Backend": 424,
            "Overloaded": 429,
            "Validation": 422,
            "Tokenizer": 422,
            "Empty": 400,
        }
        messages = {
            "Unhealthy": "unhealthy",
            "Backend": "Inference failed",
            "Overloaded": "Model is overloaded",
            "Validation": "Input validation error",
            "Tokenizer": "Tokenization error",
            "Empty": "Batch is empty",
        }
        if error_type not in statuses:
            raise ValueError(f"unknown TEI error_type {error_type!r}")
        return cls(
            status or statuses[error_type],
            {"error": message or messages[error_type], "error_type": error_type},
        )

    @classmethod
    def plain(cls, status, text):
        """``status`` with a plain-text body (e.g. the router's 404 ``Not Found``)."""
        return cls(status, headers={"Content-Type": _TEXT}, body=text)

    @classmethod
    def unauthorized(cls, echo=False):
        """401 "Invalid credentials"; with ``echo``, the message repeats the Authorization header.

        The Inference API does not echo credentials; some proxies and self-hosted servers
        do, and a client must not store or log what they send back.
        """
        message = "Invalid credentials in Authorization header"
        if echo:
            message += ": {authorization}"
        return cls(401, {"error": message})

    @classmethod
    def forbidden(cls, echo=False):
        """403: the token lacks the permission; ``echo`` repeats the header in body and header.

        With ``echo`` the header also comes back in ``X-Error-Message``, which clients read
        before the body.
        """
        message = (
            "This authentication method does not have sufficient permissions to call "
            "Inference Providers"
        )
        if not echo:
            return cls(403, {"error": message})
        echoed = f"{message} (credentials: {{authorization}})"
        return cls(403, {"error": echoed}, {"X-Error-Message": echoed})

    @classmethod
    def hang(cls, seconds):
        """Sleep ``seconds`` and then answer normally (to trip client timeouts)."""
        return cls(delay=float(seconds), passthrough=True)

    def to_dict(self):
        """Return the JSON form accepted by ``POST /_emulator/script``."""
        data = dataclasses.asdict(self)
        data["normal"] = data.pop("passthrough")
        return data

    @classmethod
    def from_dict(cls, data):
        """Build a reply from its JSON form.

        Raises:
            ValueError: On unknown keys or values of the wrong type.
        """
        if not isinstance(data, dict):
            raise ValueError("a reply must be a JSON object")
        unknown = set(data) - _REPLY_KEYS
        if unknown:
            raise ValueError(f"unknown reply keys: {sorted(unknown)}")
        fields = dict(data)
        fields["passthrough"] = bool(fields.pop("normal", False))
        reply = cls(**fields)
        if (
            not isinstance(reply.status, int)
            or not 100 <= reply.status <= 599
            or not isinstance(reply.headers, dict)
            or not (reply.body is None or isinstance(reply.body, str))
            or not isinstance(reply.delay, (int, float))
            or reply.delay < 0
        ):
            raise ValueError(f"invalid reply: {data!r}")
        return reply


@dataclasses.dataclass(frozen=True)
class ReceivedRequest:
    """One request the emulator answered (control routes are not logged).

    Attributes:
        method: The HTTP method.
        path: The request path, query string included.
        model_id: The model id from ``/models/{model_id}``; None on other paths.
        headers: Header names lower-cased.
        body: The parsed JSON body, or None when it did not parse.
        raw: The body bytes.
        received_at: ``time.monotonic()`` when the request arrived.
        status: The status code answered.
    """

    method: str
    path: str
    model_id: str | None
    headers: dict[str, str]
    body: object
    raw: bytes
    received_at: float
    status: int

    @property
    def inputs(self):
        """The input texts: one item for a string, [] when ``inputs`` is unusable.

        A TEI batch, ``[["a"], ["b", "c"]]``, gives every text of it, in order.
        """
        value = self.body.get("inputs") if isinstance(self.body, dict) else None
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(item, list) for item in value):
            value = [text for item in value for text in item]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        return []

    def to_dict(self):
        """Return the JSON form served by ``GET /_emulator/requests``.

        Credentials are redacted (:func:`redact`): anything on the network may read the
        log, and a real token pointed at the emulator by mistake must not be handed out.
        The in-process log (``emu.requests``) keeps them as they came, for tests.
        """
        data = dataclasses.asdict(self)
        data["headers"] = {name: redact(name, value) for name, value in self.headers.items()}
        data["raw"] = self.raw.decode("utf-8", "replace")
        return data


#: Headers whose values are credentials; the served log shows only their scheme.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
REDACTED = "[redacted]"


def redact(name, value):
    """``value`` of header ``name`` as the served log shows it.

    A credential keeps its scheme (``Bearer [redacted]``), so a test can still tell that
    it was sent and how; every other header is shown as it came.
    """
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, _, credentials = value.strip().partition(" ")
    if credentials and scheme.isalpha():
        return f"{scheme} {REDACTED}"
    return REDACTED


def json_answer(status, payload):
    """A JSON answer."""
    return status, {"Content-Type": _JSON}, json.dumps(payload).encode()


def plain_answer(status, text):
    """A plain-text answer."""
    return status, {"Content-Type": _TEXT}, text.encode()


def has_header(headers, name):
    """Whether ``headers`` has ``name`` (lower-case), whatever the case of its keys."""
    return any(key.lower() == name for key in headers)


def render(reply, model_id, authorization=""):
    """The (status, headers, body) of a scripted reply, its placeholders filled in.

    ``{model_id}`` becomes ``model_id``, ``{authorization}`` the request's ``Authorization``
    header.
    """
    fields = {"model_id": model_id, "authorization": authorization}
    headers = _fill(dict(reply.headers), fields)
    if reply.body is not None:
        payload = _fill(reply.body, fields).encode()
        default_type = _TEXT
    elif reply.json is not None:
        payload = json.dumps(_fill(reply.json, fields)).encode()
        default_type = _JSON
    else:
        return reply.status, headers, b""
    if not has_header(headers, "content-type"):
        headers["Content-Type"] = default_type
    return reply.status, headers, payload
