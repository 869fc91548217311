"""The shared HTTP layer: error statuses, retry hints, transport failures, secrets.

Exercised through the Hugging Face backend, with HTTP replaced only at the one
seam (the session's ``post``) by real ``requests.Response`` objects.
"""

import email.utils
import time

import pytest
import requests

from django_textclass.backends.http import STATUS_ADVICE, is_transient
from django_textclass.backends.huggingface import Backend
from django_textclass.exceptions import (
    InvalidResponseError,
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)
from django_textclass.types import Parameters
from tests.backends.helpers import MODEL, TOKEN, block_network, install_post, make_response

HOST = "https://router.huggingface.co"
TEI_VALIDATION = "Input validation error: `inputs` must have less than 512 tokens. Given: 571"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    block_network(monkeypatch)


@pytest.fixture
def backend():
    backend = Backend(alias="hf", TOKEN=TOKEN)
    yield backend
    backend.close()


def call_with(monkeypatch, backend, result):
    """Classify one text against ``result`` (a response or an exception); return the error."""
    install_post(monkeypatch, backend, result)
    with pytest.raises(Exception) as info:
        backend.classify(["some text"], Parameters(), model_id=MODEL)
    return info.value


def everything_said(exc):
    """Every string an exception exposes: str, repr, args, message, body, its cause's str."""
    parts = [str(exc), repr(exc), *map(str, exc.args)]
    parts += [str(getattr(exc, name, "")) for name in ("message", "body")]
    if exc.__cause__ is not None:
        parts += [str(exc.__cause__), repr(exc.__cause__)]
    return "\n".join(parts)


# Permanent statuses (reference §4: do not retry).

PERMANENT_CASES = [
    pytest.param(
        400,
        {"json": {"error": ["Error in `parameters`: received `x` in `parameters`"]}},
        "received `x` in `parameters`",
        id="400_error_list",
    ),
    pytest.param(
        400,
        {"json": {"error": "Batch is empty", "error_type": "Empty"}},
        "Batch is empty",
        id="400_tei_empty",
    ),
    pytest.param(
        401,
        {"json": {"error": "Invalid credentials in Authorization header"}},
        "Invalid credentials in Authorization header",
        id="401",
    ),
    pytest.param(
        402,
        {
            "json": {
                "error": "You have exceeded your monthly included credits for Inference "
                "Providers. Subscribe to PRO to get 20x more monthly included "
                "credits."
            }
        },
        "exceeded your monthly included credits",
        id="402",
    ),
    pytest.param(
        403,
        {
            "json": {
                "error": "This authentication method does not have sufficient "
                "permissions to call Inference Providers on behalf of user alice"
            }
        },
        "does not have sufficient permissions",
        id="403",
    ),
    pytest.param(
        404,
        {"json": {"error": "Model foo/bar does not exist"}},
        "Model foo/bar does not exist",
        id="404_json",
    ),
    pytest.param(404, {"text": "Not Found"}, "Not Found", id="404_plain_text"),
    pytest.param(
        410,
        {
            "json": {
                "error": "https://api-inference.huggingface.co is no longer supported. "
                "Please use https://router.huggingface.co instead."
            }
        },
        "is no longer supported",
        id="410",
    ),
    pytest.param(
        413,
        {"json": {"error": TEI_VALIDATION, "error_type": "Validation"}},
        "must have less than 512 tokens",
        id="413",
    ),
    pytest.param(
        422,
        {"json": {"error": TEI_VALIDATION, "error_type": "Validation"}},
        "must have less than 512 tokens",
        id="422",
    ),
    pytest.param(
        424,
        {"json": {"error": "Model is not a classifier model", "error_type": "Backend"}},
        "Model is not a classifier model",
        id="424",
    ),
]


@pytest.mark.parametrize(("status", "body", "detail"), PERMANENT_CASES)
def test_error__permanent_status_raises_permanent_error(monkeypatch, backend, status, body, detail):
    exc = call_with(monkeypatch, backend, make_response(status, **body))

    assert type(exc) is PermanentBackendError
    assert not isinstance(exc, TransientBackendError)
    assert exc.status_code == status
    assert exc.code == f"http_{status}"
    assert exc.message.startswith(f"HTTP {status} from {HOST}: ")
    assert detail in exc.message
    assert f"({STATUS_ADVICE[status]})" in exc.message


def test_error__every_permanent_status_of_the_table_has_advice():
    assert set(STATUS_ADVICE) == {400, 401, 402, 403, 404, 410, 413, 422, 424}
    assert not any(is_transient(status) for status in STATUS_ADVICE)


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (401, "token is missing or invalid"),
        (402, "credits are used up"),
        (403, "'Make calls to Inference Providers' permission"),
        (404, "not deployed on this endpoint"),
        (410, "https://router.huggingface.co/hf-inference/models/{model_id}"),
    ],
)
def test_error__advice_says_what_to_do(monkeypatch, backend, status, advice):
    exc = call_with(monkeypatch, backend, make_response(status, json={"error": "x"}))

    assert advice in str(exc)


def test_error__other_4xx_is_permanent_without_advice(monkeypatch, backend):
    exc = call_with(monkeypatch, backend, make_response(405, text="Method Not Allowed"))

    assert type(exc) is PermanentBackendError
    assert exc.code == "http_405"
    assert exc.message == f"HTTP 405 from {HOST}: Method Not Allowed"


# Transient statuses (reference §4: retry).

TRANSIENT_CASES = [
    pytest.param(408, {"text": "Request Timeout"}, "Request Timeout", id="408"),
    pytest.param(
        429,
        {"json": {"error": "Model is overloaded", "error_type": "Overloaded"}},
        "Model is overloaded",
        id="429",
    ),
    pytest.param(
        500,
        {"json": {"error": "unknown error", "warnings": ["CUDA out of memory"]}},
        "unknown error",
        id="500",
    ),
    pytest.param(
        502,
        {
            "text": "<html><head><title>502 Bad Gateway</title></head>"
            "<body><h1>502 Bad Gateway</h1></body></html>"
        },
        None,
        id="502_html",
    ),
    pytest.param(
        503,
        {"json": {"error": "Model foo/bar is currently loading", "estimated_time": 20.0}},
        "Model foo/bar is currently loading",
        id="503_loading",
    ),
    pytest.param(
        503,
        {"text": "503 Server Error: Service Temporarily Unavailable"},
        "503 Server Error: Service Temporarily Unavailable",
        id="503_unavailable",
    ),
    pytest.param(
        503,
        {"json": {"error": "Health check failed", "error_type": "Unhealthy"}},
        "Health check failed",
        id="503_tei_unhealthy",
    ),
    pytest.param(504, {"text": "<h1>504</h1><p>Gateway Timeout</p>"}, None, id="504_html"),
]


@pytest.mark.parametrize(("status", "body", "detail"), TRANSIENT_CASES)
def test_error__transient_status_raises_transient_error(monkeypatch, backend, status, body, detail):
    exc = call_with(monkeypatch, backend, make_response(status, **body))

    assert type(exc) is TransientBackendError
    assert not isinstance(exc, PermanentBackendError)
    assert exc.status_code == status
    assert exc.code == f"http_{status}"
    assert exc.model_loading is (status == 503)
    if detail is None:
        # An HTML error page is not quoted into the message.
        assert exc.message == f"HTTP {status} from {HOST}"
        assert "<" not in str(exc)
    else:
        assert exc.message == f"HTTP {status} from {HOST}: {detail}"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 507, 520, 524, 599])
def test_is_transient__timeouts_rate_limits_and_server_errors(status):
    assert is_transient(status)


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422, 424, 501, 505, 600])
def test_is_transient__other_statuses_are_permanent(status):
    assert not is_transient(status)


def test_error__x_error_message_header_wins_over_body(monkeypatch, backend):
    response = make_response(
        500, json={"error": "from the body"}, headers={"X-Error-Message": "from the header"}
    )

    exc = call_with(monkeypatch, backend, response)

    assert exc.message == f"HTTP 500 from {HOST}: from the header"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "from message"}, "from message"),
        ({"detail": "from detail"}, "from detail"),
        ({"error": ["first", "second"]}, "first; second"),
    ],
    ids=["message_key", "detail_key", "error_list"],
)
def test_error__detail_is_read_from_known_keys(monkeypatch, backend, body, expected):
    exc = call_with(monkeypatch, backend, make_response(400, json=body))

    assert exc.message.startswith(f"HTTP 400 from {HOST}: {expected} (")


def test_error__long_detail_is_trimmed(monkeypatch, backend):
    exc = call_with(monkeypatch, backend, make_response(400, json={"error": "e" * 5000}))

    assert "e" * 300 in exc.message
    assert "e" * 301 not in exc.message


def test_error__message_has_host_but_no_path(monkeypatch, backend):
    exc = call_with(monkeypatch, backend, make_response(404, text="Not Found"))

    assert HOST in exc.message
    assert "/hf-inference/models/" not in exc.message


def test_error__empty_error_body_gives_bare_message(monkeypatch, backend):
    exc = call_with(monkeypatch, backend, make_response(401))

    assert exc.message == f"HTTP 401 from {HOST} ({STATUS_ADVICE[401]})"


# Retry hints.


def _http_date(offset_seconds):
    return email.utils.formatdate(time.time() + offset_seconds, usegmt=True)


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        pytest.param(
            503,
            {"json": {"error": "loading", "estimated_time": 20.0}},
            {},
            20.0,
            id="estimated_time",
        ),
        pytest.param(
            503,
            {"json": {"error": "loading", "estimated_time": 7}},
            {},
            7.0,
            id="estimated_time_int",
        ),
        pytest.param(
            429,
            {"json": {"error": "slow down"}},
            {"Retry-After": "120"},
            120.0,
            id="retry_after_seconds",
        ),
        pytest.param(
            503,
            {"text": "busy"},
            {"retry-after": " 3 "},
            3.0,
            id="retry_after_header_name_any_case",
        ),
        pytest.param(
            429,
            {"json": {"error": "rate limited"}},
            {"RateLimit": '"api";r=0;t=42'},
            42.0,
            id="ratelimit_reset",
        ),
        pytest.param(
            503,
            {"json": {"error": "loading", "estimated_time": 20.0}},
            {"Retry-After": "5", "RateLimit": '"api";r=0;t=42'},
            20.0,
            id="estimated_time_beats_headers",
        ),
        pytest.param(
            429,
            {"json": {"error": "x"}},
            {"Retry-After": "5", "RateLimit": '"api";r=0;t=42'},
            5.0,
            id="retry_after_beats_ratelimit",
        ),
        pytest.param(
            503,
            {"json": {"error": "loading", "estimated_time": True}},
            {},
            None,
            id="bool_estimated_time_ignored",
        ),
        pytest.param(
            503,
            {"json": {"error": "loading", "estimated_time": -4}},
            {},
            None,
            id="negative_estimated_time_ignored",
        ),
        pytest.param(
            503,
            {"json": {"error": "loading", "estimated_time": "20"}},
            {},
            None,
            id="string_estimated_time_ignored",
        ),
        pytest.param(
            429,
            {"json": {"error": "x"}},
            {"Retry-After": "soon"},
            None,
            id="unparsable_retry_after",
        ),
        pytest.param(500, {"json": {"error": "x"}}, {}, None, id="no_hint"),
        pytest.param(502, {"text": "<h1>502</h1>"}, {}, None, id="html_no_hint"),
    ],
)
def test_retry_after__hint(monkeypatch, backend, status, body, headers, expected):
    exc = call_with(monkeypatch, backend, make_response(status, headers=headers, **body))

    assert isinstance(exc, TransientBackendError)
    assert exc.retry_after == expected


def test_retry_after__from_http_date(monkeypatch, backend):
    response = make_response(503, text="busy", headers={"Retry-After": _http_date(120)})

    exc = call_with(monkeypatch, backend, response)

    assert 110.0 <= exc.retry_after <= 121.0


def test_retry_after__http_date_in_the_past_is_zero(monkeypatch, backend):
    response = make_response(429, text="busy", headers={"Retry-After": _http_date(-600)})

    exc = call_with(monkeypatch, backend, response)

    assert exc.retry_after == 0.0


def test_retry_after__not_set_on_permanent_errors(monkeypatch, backend):
    response = make_response(404, text="Not Found", headers={"Retry-After": "30"})

    exc = call_with(monkeypatch, backend, response)

    assert isinstance(exc, PermanentBackendError)
    assert not hasattr(exc, "retry_after")


# Transport failures.


@pytest.mark.parametrize(
    ("raised", "code", "words"),
    [
        (requests.ReadTimeout("read timed out"), "timeout", "no answer from"),
        (requests.Timeout("timed out"), "timeout", "no answer from"),
        (requests.ConnectTimeout("connect timed out"), "timeout", "cannot connect to"),
        (requests.ConnectionError("refused"), "connection_error", "cannot connect to"),
        (requests.exceptions.ChunkedEncodingError("broken"), "request_error", "failed"),
    ],
    ids=["read_timeout", "timeout", "connect_timeout", "connection_error", "other_request_error"],
)
def test_transport__failure_raises_transient_error(monkeypatch, backend, raised, code, words):
    exc = call_with(monkeypatch, backend, raised)

    assert type(exc) is TransientBackendError
    assert exc.code == code
    assert exc.status_code is None
    assert exc.retry_after is None
    assert exc.model_loading is False
    assert words in exc.message
    assert HOST in exc.message
    assert exc.__cause__ is raised


def test_transport__timeouts_name_the_configured_seconds(monkeypatch):
    backend = Backend(TOKEN=TOKEN, CONNECT_TIMEOUT=2, READ_TIMEOUT=9)

    connect = call_with(monkeypatch, backend, requests.ConnectTimeout())
    read = call_with(monkeypatch, backend, requests.ReadTimeout())

    assert "within 2 s" in connect.message
    assert "within 9 s" in read.message
    backend.close()


@pytest.mark.parametrize(
    "raised", [requests.exceptions.InvalidURL("bad"), requests.exceptions.MissingSchema("bad")]
)
def test_transport__invalid_url_raises_configuration_error(monkeypatch, backend, raised):
    exc = call_with(monkeypatch, backend, raised)

    assert isinstance(exc, TextClassConfigurationError)


def test_transport__non_json_success_keeps_no_body(monkeypatch, backend):
    # A server that echoes its input would otherwise put the user's text in the error.
    exc = call_with(monkeypatch, backend, make_response(200, text="echo: my private text"))

    assert type(exc) is InvalidResponseError
    assert exc.body is None
    assert "my private text" not in everything_said(exc)
    assert "21 bytes" in exc.message


# The token never leaks.


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        pytest.param(401, {"json": {"error": f"Invalid token {TOKEN}"}}, {}, id="401_json"),
        pytest.param(
            400, {"json": {"error": [f"bad header Bearer {TOKEN}", TOKEN]}}, {}, id="400_list"
        ),
        pytest.param(403, {"text": f"token={TOKEN} forbidden"}, {}, id="403_plain_text"),
        pytest.param(
            404, {"text": "Not Found"}, {"X-Error-Message": f"who is {TOKEN}?"}, id="404_header"
        ),
        pytest.param(
            500,
            {"json": {"message": f"echo: Authorization: Bearer {TOKEN}"}},
            {},
            id="500_message_key",
        ),
        pytest.param(503, {"json": {"error": TOKEN, "estimated_time": 1}}, {}, id="503_loading"),
    ],
)
def test_token__never_in_exception_even_when_echoed(monkeypatch, backend, status, body, headers):
    exc = call_with(monkeypatch, backend, make_response(status, headers=headers, **body))

    said = everything_said(exc)
    assert TOKEN not in said
    assert "***" in said  # the echo was there, and was scrubbed


def test_token__not_in_a_non_json_success_answer(monkeypatch, backend):
    exc = call_with(monkeypatch, backend, make_response(200, text=f"not json, but {TOKEN}"))

    assert TOKEN not in everything_said(exc)


def test_token__no_part_leaks_when_the_echo_is_cut_at_the_trim_limit(monkeypatch, backend):
    error = "x" * 280 + TOKEN  # the token starts 20 characters before the 300-char cut
    exc = call_with(monkeypatch, backend, make_response(401, json={"error": error}))

    assert TOKEN[:20] not in everything_said(exc)


@pytest.mark.parametrize(
    "raised",
    [requests.ConnectionError("refused"), requests.ReadTimeout("slow")],
    ids=["connection_error", "timeout"],
)
def test_token__not_in_transport_errors(monkeypatch, backend, raised):
    exc = call_with(monkeypatch, backend, raised)

    assert TOKEN not in everything_said(exc)
