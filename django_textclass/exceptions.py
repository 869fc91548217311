"""The whole error taxonomy of django-textclass.

A backend raises exactly one of two families, and the family decides what the
pipeline does next:

* :class:`TransientBackendError`: try again later (timeouts, connection errors,
  408, 429, 5xx other than 501/505, 503 "loading"); ``retry_after`` carries the
  server's own delay hint.
* :class:`PermanentBackendError`: fail the request now (other 4xx, an answer we
  cannot parse). :class:`InvalidResponseError` is the unparsable-answer case.

Configuration problems raise :class:`TextClassConfigurationError`
(an ``ImproperlyConfigured``): they are never retried and never swallowed.

No message here ever contains the API token or the text being classified.
"""

from django.core.exceptions import ImproperlyConfigured

#: How much of a response body an exception keeps.
BODY_PREVIEW_CHARS = 300


class TextClassError(Exception):
    """Base class of every runtime error raised by django-textclass.

    Attributes:
        code: a short stable identifier stored on failed requests (``http_404``,
            ``timeout``, ``invalid_response``, ...).
        status_code: the HTTP status, when there was one.
        body: the start of the response body, when there was one.
    """

    default_code = "error"

    def __init__(self, message, *, code=None, status_code=None, body=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status_code = status_code
        self.body = body[:BODY_PREVIEW_CHARS] if body else body

    def __str__(self):
        if self.body:
            return f"{self.message} (response: {self.body})"
        return self.message


class BackendError(TextClassError):
    """A backend could not classify the texts."""


class TransientBackendError(BackendError):
    """Worth trying again later.

    Attributes:
        retry_after: seconds the server asked us to wait (``estimated_time``,
            ``Retry-After`` or ``RateLimit``), or None when it gave no hint.
        model_loading: True after a 503 (the API's "model is loading" answer, or any
            other unavailability); the next attempt then asks the server to wait for
            the model, as the API's documentation advises (only after a 503).
    """

    default_code = "transient"

    def __init__(self, message, *, retry_after=None, model_loading=False, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.model_loading = model_loading


class PermanentBackendError(BackendError):
    """Trying again will not help: the request fails now."""

    default_code = "permanent"


class InvalidResponseError(PermanentBackendError):
    """The answer was not valid JSON or not a ranking of ``{label, score}`` objects."""

    default_code = "invalid_response"


class InvalidInputError(TextClassError, ValueError):
    """A text, model id or parameter given to ``submit()`` was rejected.

    Attributes:
        field: the name of the offending argument (``text``, ``model``, ``top_k``, ...).
    """

    default_code = "invalid_input"

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class TextClassConfigurationError(ImproperlyConfigured):
    """``TEXTCLASS`` or a backend's options are wrong. Never retried."""


class RegistrationError(TextClassConfigurationError):
    """A registration of content is invalid; ``check_id`` is the system check that reports it."""

    def __init__(self, message, check_id="textclass.E020"):
        super().__init__(message)
        self.check_id = check_id
