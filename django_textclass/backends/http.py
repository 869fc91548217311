"""The one place outbound HTTP happens: session, timeouts, and error mapping.

Provider modules build payloads and parse answers; this layer turns every
transport failure and HTTP error status into the pipeline's two exception
families, with the server's delay hint attached when it gave one.
"""

import email.utils
import logging
import re
import threading
import time

import requests
from requests.adapters import HTTPAdapter

from django_textclass import __version__
from django_textclass.backends.base import BaseBackend, positive_number  # noqa: F401  (its old home)
from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)

logger = logging.getLogger("django_textclass.http")

#: Statuses worth another try besides 5xx: request timeout and rate limiting.
TRANSIENT_CLIENT_STATUSES = frozenset({408, 429})
#: Server errors that another try will not fix.
PERMANENT_SERVER_STATUSES = frozenset({501, 505})


def is_transient(status):
    """Whether an error status is worth another try (408, 429, and 5xx but 501/505)."""
    if status in TRANSIENT_CLIENT_STATUSES:
        return True
    return 500 <= status <= 599 and status not in PERMANENT_SERVER_STATUSES


#: What to do next, per permanent status, appended to the error message.
STATUS_ADVICE = {
    400: "the server rejected the input or parameters",
    401: "the token is missing or invalid",
    402: "the account's Inference Providers credits are used up",
    403: "the token lacks the 'Make calls to Inference Providers' permission",
    404: "the model is not deployed on this endpoint, or the URL is wrong",
    410: "this host is retired; use https://router.huggingface.co/hf-inference/models/{model_id}",
    413: "the text or batch is too large for the endpoint",
    422: "the endpoint could not process the input (too long for the model?)",
    424: "the model failed on this input",
}

#: How much of the server's own error text a message keeps.
DETAIL_CHARS = 300

_RATELIMIT_RESET = re.compile(r"(?:^|;)\s*t=(\d+)")


class HTTPBackend(BaseBackend):
    """A backend that talks JSON over HTTP through one pooled ``requests`` session.

    Options (keys of the backend's ``OPTIONS``):
        CONNECT_TIMEOUT: seconds to open a connection (default 5).
        READ_TIMEOUT: seconds to wait for the answer (default 30).
        HEADERS: extra headers sent with every call (e.g. ``X-HF-Bill-To``).
    """

    #: A call mostly waits on the network: a run keeps several out at once.
    calls_in_flight = 4
    #: What to do next, per permanent status (a provider module may give its own words).
    status_advice = STATUS_ADVICE
    user_agent = f"django-textclass/{__version__} python-requests/{requests.__version__}"

    def __init__(self, *, CONNECT_TIMEOUT=5.0, READ_TIMEOUT=30.0, HEADERS=None, **options):
        super().__init__(**options)
        self.timeout = (
            positive_number(self.alias, "CONNECT_TIMEOUT", CONNECT_TIMEOUT),
            positive_number(self.alias, "READ_TIMEOUT", READ_TIMEOUT),
        )
        if not isinstance(HEADERS or {}, dict):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: HEADERS must be a dict."
            )
        self.extra_headers = dict(HEADERS or {})
        self._session = None
        self._session_lock = threading.Lock()
        self._secrets = ()

    @property
    def session(self):
        """The pooled ``requests.Session``, created on first use (shared by the run's threads)."""
        with self._session_lock:
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def _new_session(self):
        session = requests.Session()
        # Retries belong to the pipeline, which knows the attempt budget.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = self.user_agent
        return session

    def close(self):
        """Close the pooled session; a new one is opened on next use."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def post_json(self, url, payload, headers=None):
        """POST ``payload`` as JSON and return the decoded answer.

        Raises:
            TransientBackendError: timeouts, connection errors, retryable statuses.
            PermanentBackendError: any other error status.
            InvalidResponseError: a success status whose body is not JSON.
        """
        return self._send_json("POST", url, headers, self.timeout, json=payload)

    def get_json(self, url, headers=None, timeout=None):
        """GET ``url`` and return the decoded answer; errors as :meth:`post_json` raises them.

        ``timeout`` is a ``(connect, read)`` pair; default: the backend's own timeouts.
        """
        return self._send_json("GET", url, headers, timeout or self.timeout)

    def _send_json(self, method, url, headers, timeout, **body):
        started = time.monotonic()
        # session.post / session.get (not session.request): the unit tests replace exactly
        # those, the one HTTP seam.
        send = self.session.post if method == "POST" else self.session.get
        try:
            response = send(
                url,
                headers={**self.extra_headers, **(headers or {})},
                timeout=timeout,
                **body,
            )
        except requests.ConnectTimeout as exc:
            raise TransientBackendError(
                f"cannot connect to {_host(url)} within {timeout[0]:g} s", code="timeout"
            ) from exc
        except requests.Timeout as exc:
            raise TransientBackendError(
                f"no answer from {_host(url)} within {timeout[1]:g} s", code="timeout"
            ) from exc
        except requests.ConnectionError as exc:
            raise TransientBackendError(
                f"cannot connect to {_host(url)}: {type(exc).__name__}", code="connection_error"
            ) from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise TextClassConfigurationError(f"invalid backend URL: {exc}") from exc
        except requests.RequestException as exc:
            raise TransientBackendError(
                f"request to {_host(url)} failed: {type(exc).__name__}", code="request_error"
            ) from exc
        logger.debug(
            "%s %s -> %s in %.0f ms",
            method,
            _host(url),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if response.status_code >= 400:
            raise self.error_for(response)
        try:
            return response.json()
        except ValueError as exc:
            # The body is not kept: a server that echoes its input would put the
            # user's text into the stored error message.
            content_type = response.headers.get("Content-Type", "no content type")
            raise InvalidResponseError(
                f"HTTP {response.status_code} answer is not JSON "
                f"({content_type}, {len(response.content)} bytes)",
                status_code=response.status_code,
            ) from exc

    def error_for(self, response):
        """Map an error response to a transient or permanent backend error."""
        status = response.status_code
        detail = self._scrub(_error_detail(response))[:DETAIL_CHARS]
        message = f"HTTP {status} from {_host(response.url)}"
        if detail:
            message = f"{message}: {detail}"
        kwargs = {"code": f"http_{status}", "status_code": status}
        if is_transient(status):
            return TransientBackendError(
                message,
                retry_after=retry_after_hint(response),
                model_loading=status == 503,
                **kwargs,
            )
        advice = self.status_advice.get(status)
        if advice:
            message = f"{message} ({advice})"
        return PermanentBackendError(message, **kwargs)

    def _scrub(self, text):
        """Remove any configured secret from text that may end up in a message."""
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def retry_after_hint(response):
    """Seconds the server asked us to wait, or None.

    Reads, in order: ``estimated_time`` in a JSON body (model loading),
    ``Retry-After`` (seconds or an HTTP date), and the ``t=`` reset of a
    ``RateLimit`` header (IETF draft used by the Hub).
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        estimated = body.get("estimated_time")
        valid = isinstance(estimated, (int, float)) and not isinstance(estimated, bool)
        if valid and estimated >= 0:
            return float(estimated)
    retry_after = response.headers.get("Retry-After", "").strip()
    if retry_after:
        if retry_after.isdigit():
            return float(retry_after)
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    match = _RATELIMIT_RESET.search(response.headers.get("RateLimit", ""))
    if match:
        return float(match.group(1))
    return None


def _error_detail(response):
    """The server's own words about an error: JSON ``error``, a header, or short text."""
    header = response.headers.get("X-Error-Message")
    if header:
        return header
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error") or body.get("message") or body.get("detail")
        if isinstance(error, list):
            error = "; ".join(str(item) for item in error)
        if error:
            return str(error)
    text = response.text.strip()
    if text and not text.lstrip().startswith("<"):
        return text
    return ""


def _host(url):
    """``scheme://host[:port]`` of a URL, for messages (no path, no query)."""
    parsed = requests.utils.urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"
