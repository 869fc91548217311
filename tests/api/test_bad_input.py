"""The bad-input catalogue of the REST API: every entry point, every kind of bad input.

Each case is one row of a table below: what is sent, where, and what must come back.
Every answer is a 4xx with a JSON body; a 400 names the field and the reason
(``{"field": [...]}`` on the classification endpoints, ``{"error": "field: reason"}`` on
the drop-in endpoint); and no table of the app changes, nor any stored request's state.
A new kind of bad input is one more row, for every entry point it applies to.

The same cases run on SQLite and on PostgreSQL (``TEXTCLASS_TEST_DB=postgres``): NUL
characters and lone surrogates are refused by the one and stored by the other, which is
why they appear everywhere below.
"""

import json
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from rest_framework.authtoken.models import Token

from django_textclass.models import ClassificationRequest, Status
from tests.api.helpers import LIST_URL, MODEL, client_for, stored

pytestmark = pytest.mark.django_db

DROP_IN = f"/api/models/{MODEL}"
STATS = "/api/stats/"
MAX_TEXT = 20_000  # TEXTCLASS defaults: the catalogue runs with them
MAX_BATCH = 100
MAX_BODY = 2 * 1024 * 1024
#: What an authentication failure answers: DRF gives 403 when the first authentication class
#: (session, in the suite's settings) sends no challenge; the drop-in endpoint always 401.
AUTH_FAILED = {"submit": 403, "history": 403, "stats": 403, "drop_in": 401}


@dataclass(frozen=True)
class Case:
    """One bad request and the answer it must get.

    ``field`` is the key of a 400's body (``detail`` for DRF's own errors) or, on the
    drop-in endpoint, the ``field:`` its one-line ``error`` starts a part with; ``reason``
    is a fragment the message must contain (case does not matter).
    """

    id: str
    method: str
    url: str
    status: int
    field: str
    reason: str
    body: bytes | None = None
    content_type: str = "application/json"
    meta: dict = field(default_factory=dict)
    user: str | None = "alice"

    @property
    def drop_in(self):
        return self.url.startswith("/api/models/")


def body_of(value):
    """A JSON body as bytes; ``ensure_ascii`` writes NUL and lone surrogates as escapes."""
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def raw(text):
    return text.encode("utf-8") if isinstance(text, str) else text


# --- the tables -----------------------------------------------------------------------------

#: Bad texts, wherever a text goes: (id, value, reason).
BAD_TEXTS = [
    ("int", 5, "string"),
    ("float", 2.5, "string"),
    ("bool", True, "string"),
    ("null", None, "null"),
    ("object", {"a": "b"}, "string"),
    ("list", ["a"], "string"),
    ("empty", "", "empty"),
    ("space", " ", "whitespace"),
    ("ascii_whitespace", " \t\n\r\x0b\x0c", "whitespace"),
    ("unicode_whitespace", "\u00a0\u2003\u3000", "whitespace"),
    ("nul_alone", "\x00", "NUL"),
    ("nul_inside", "a\x00b", "NUL"),
    ("lone_high_surrogate", "\ud800", "surrogate"),
    ("lone_low_surrogate", "x\udfffx", "surrogate"),
    ("reversed_pair", "\udc00\ud800", "surrogate"),
    ("one_too_long", "x" * (MAX_TEXT + 1), f"maximum is {MAX_TEXT}"),
    ("one_too_long_multibyte", "\u00e9" * (MAX_TEXT + 1), f"maximum is {MAX_TEXT}"),
]


def text_cases():
    """Each bad text alone and inside a batch, on both submitting endpoints."""
    for name, value, reason in BAD_TEXTS:
        yield Case(
            f"submit-text-{name}", "POST", LIST_URL, 400, "text", reason, body_of({"text": value})
        )
        yield Case(
            f"submit-texts-item-{name}",
            "POST",
            LIST_URL,
            400,
            "texts",
            reason,
            body_of({"texts": ["fine", value]}),
        )
        if not isinstance(value, list):  # a list of strings is a batch here, not a bad text
            yield Case(
                f"drop_in-inputs-{name}",
                "POST",
                DROP_IN,
                400,
                "inputs",
                reason,
                body_of({"inputs": value}),
            )
        yield Case(
            f"drop_in-inputs-item-{name}",
            "POST",
            DROP_IN,
            400,
            "inputs",
            reason,
            body_of({"inputs": ["fine", value]}),
        )


#: Bad batches: (id, submit body, submit reason, drop-in body or None, drop-in reason).
BAD_BATCHES = [
    ("empty", {"texts": []}, "empty", {"inputs": []}, "empty"),
    (
        "one_over_the_maximum",
        {"texts": ["a"] * (MAX_BATCH + 1)},
        str(MAX_BATCH),
        {"inputs": ["a"] * (MAX_BATCH + 1)},
        str(MAX_BATCH),
    ),
    (
        "ten_thousand_and_one",
        {"texts": ["a"] * 10_001},
        str(MAX_BATCH),
        {"inputs": ["a"] * 10_001},
        str(MAX_BATCH),
    ),
    ("a_string", {"texts": "a"}, "list", None, ""),
    ("an_object", {"texts": {"0": "a"}}, "list", {"inputs": {"0": "a"}}, "list of strings"),
    ("null", {"texts": None}, "null", {"inputs": None}, "null"),
    ("nested", {"texts": [["a"]]}, "string", {"inputs": [["a"]]}, "string"),
    ("both_text_and_texts", {"text": "a", "texts": ["b"]}, "not both", None, ""),
]


def batch_cases():
    for name, submit, submit_reason, drop_in, drop_in_reason in BAD_BATCHES:
        yield Case(
            f"submit-batch-{name}", "POST", LIST_URL, 400, "texts", submit_reason, body_of(submit)
        )
        if drop_in is not None:
            yield Case(
                f"drop_in-batch-{name}",
                "POST",
                DROP_IN,
                400,
                "inputs",
                drop_in_reason,
                body_of(drop_in),
            )


#: Whole bodies, sent to both submitting endpoints: (id, body, status, field, reason).
#: ``{field}`` in a body is the endpoint's text field (``text`` or ``inputs``).
BAD_BODIES = [
    ("invalid_utf8", b'{"{field}": "a\xff"}', 400, "detail", "JSON parse error"),
    ("utf8_encoded_surrogate", b'{"{field}": "\xed\xa0\x80"}', 400, "detail", "JSON parse error"),
    ("overlong_utf8", b'{"{field}": "\xc0\xaf"}', 400, "detail", "JSON parse error"),
    ("byte_order_mark", b'\xef\xbb\xbf{"{field}": "a"}', 400, "detail", "JSON parse error"),
    ("truncated", b'{"{field}": ', 400, "detail", "JSON parse error"),
    ("trailing_garbage", b'{"{field}": "a"} x', 400, "detail", "JSON parse error"),
    ("single_quotes", b"{'{field}': 'a'}", 400, "detail", "JSON parse error"),
    ("nan", b'{"{field}": "a", "parameters": {"top_k": NaN}}', 400, "detail", "NaN"),
    ("infinity", b'{"{field}": "a", "parameters": {"top_k": Infinity}}', 400, "detail", "Infinity"),
    (
        "minus_infinity",
        b'{"{field}": "a", "parameters": {"top_k": -Infinity}}',
        400,
        "detail",
        "Infinity",
    ),
    (
        "integer_of_5000_digits",
        b'{"{field}": "a", "parameters": {"top_k": ' + b"9" * 5000 + b"}}",
        400,
        "detail",
        "JSON parse error",
    ),
    ("top_level_list", b'["a"]', 400, "non_field_errors", "dictionary"),
    ("top_level_string", b'"a"', 400, "non_field_errors", "dictionary"),
    ("top_level_number", b"5", 400, "non_field_errors", "dictionary"),
    ("top_level_null", b"null", 400, "non_field_errors", "no data"),
    ("top_level_true", b"true", 400, "non_field_errors", "dictionary"),
    ("empty_object", b"{}", 400, "{field}", "required"),
    ("empty_body", b"", 400, "{field}", "required"),
    ("arrays_100000_deep", b"[" * 100_000 + b"]" * 100_000, 400, "detail", "nested deeper"),
    (
        "objects_100000_deep",
        b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
        400,
        "detail",
        "nested deeper",
    ),
    (
        "nested_33_levels_in_a_field",
        b'{"{field}": ' + b"[" * 32 + b'"a"' + b"]" * 32 + b"}",
        400,
        "detail",
        "nested deeper than 32",
    ),
    (
        "three_megabytes",
        b'{"{field}": "' + b"x" * 3_000_000 + b'"}',
        413,
        "detail",
        f"larger than {MAX_BODY} bytes",
    ),
    ("text_field_twice", b'{"{field}": "a", "{field}": 5}', 400, "{field}", "string"),
]
#: Bodies that are not JSON at all: (id, content type, status).
NOT_JSON = [
    ("plain_text", "text/plain", 415),
    ("form_urlencoded", "application/x-www-form-urlencoded", 415),
    ("multipart", "multipart/form-data; boundary=xyz", 415),
    ("xml", "application/xml", 415),
    ("no_content_type", "", 415),
]


def body_cases():
    for endpoint, url, text_field in (("submit", LIST_URL, "text"), ("drop_in", DROP_IN, "inputs")):
        for name, body, status, field_name, reason in BAD_BODIES:
            yield Case(
                f"{endpoint}-body-{name}",
                "POST",
                url,
                status,
                field_name.replace("{field}", text_field),
                reason,
                body.replace(b"{field}", text_field.encode()),
            )
        for name, content_type, status in NOT_JSON:
            yield Case(
                f"{endpoint}-{name}",
                "POST",
                url,
                status,
                "detail",
                "media type",
                body_of({text_field: "a"}),
                content_type=content_type,
            )
        yield Case(
            f"{endpoint}-declared_length_over_the_limit",
            "POST",
            url,
            413,
            "detail",
            "larger than",
            body_of({text_field: "a"}),
            meta={"CONTENT_LENGTH": str(MAX_BODY + 1)},
        )


#: Bad ``parameters``, on both submitting endpoints: (id, parameters, reason).
BAD_PARAMETERS = [
    ("function_unknown", {"function_to_apply": "relu"}, "valid choice"),
    ("function_empty", {"function_to_apply": ""}, "valid choice"),
    ("function_upper_case", {"function_to_apply": "SIGMOID"}, "valid choice"),
    ("function_number", {"function_to_apply": 1}, "valid choice"),
    ("function_bool", {"function_to_apply": True}, "valid choice"),
    ("function_list", {"function_to_apply": ["sigmoid"]}, "valid choice"),
    ("function_lone_surrogate", {"function_to_apply": "\ud800"}, "valid choice"),
    ("function_nul", {"function_to_apply": "sigmoid\x00"}, "valid choice"),
    ("top_k_zero", {"top_k": 0}, "greater than or equal to 1"),
    ("top_k_negative", {"top_k": -1}, "greater than or equal to 1"),
    ("top_k_over_1000", {"top_k": 1001}, "less than or equal to 1000"),
    ("top_k_huge", {"top_k": 10**20}, "less than or equal to 1000"),
    ("top_k_string", {"top_k": "3"}, "valid integer"),
    ("top_k_float", {"top_k": 2.5}, "valid integer"),
    ("top_k_bool", {"top_k": True}, "valid integer"),
    ("top_k_list", {"top_k": [3]}, "valid integer"),
    ("top_k_object", {"top_k": {"k": 3}}, "valid integer"),
    ("unknown_truncation", {"truncation": True}, "Unknown field"),
    ("unknown_top_n", {"top_n": 3}, "Unknown field"),
    ("unknown_lone_surrogate_name", {"\udcff": 1}, "Unknown field"),
    ("not_an_object_string", "sigmoid", "dictionary"),
    ("not_an_object_list", [], "dictionary"),
    ("not_an_object_number", 5, "dictionary"),
]


def parameter_cases():
    for endpoint, url, text_field in (("submit", LIST_URL, "text"), ("drop_in", DROP_IN, "inputs")):
        for name, parameters, reason in BAD_PARAMETERS:
            yield Case(
                f"{endpoint}-parameters-{name}",
                "POST",
                url,
                400,
                "parameters",
                reason,
                body_of({text_field: "fine", "parameters": parameters}),
            )


#: Fields of the submit body besides the texts: (id, extra body, field, reason).
BAD_SUBMIT_FIELDS = [
    *[
        (f"model_{name}", {"model": value}, "model", reason)
        for name, value, reason in [
            ("parent_path", "../admin", "repository id"),
            ("three_parts", "a/b/c", "repository id"),
            ("url", "https://evil.example/models/x", "repository id"),
            ("space", "owner/my model", "repository id"),
            ("dot_dot_inside", "org/../x", "repository id"),
            ("query", "x?y", "repository id"),
            ("fragment", "x#y", "repository id"),
            ("trailing_slash", "org/", "repository id"),
            ("percent_encoded", "%2e%2e", "repository id"),
            ("part_too_long", "a" * 97, "repository id"),
            ("nul", "x\x00y", "repository id"),
            ("lone_surrogate", "\ud800", "repository id"),
            ("empty", "", "blank"),
            ("number", 7, "string"),
            ("null", None, "null"),
        ]
    ],
    *[
        (f"use_cache_{name}", {"use_cache": value}, "use_cache", reason)
        for name, value, reason in [
            ("string_no", "no", "boolean"),
            ("string_true", "true", "boolean"),
            ("zero", 0, "boolean"),
            ("one", 1, "boolean"),
            ("null", None, "null"),
        ]
    ],
    *[
        (f"wait_{name}", {"wait": value}, "wait", reason)
        for name, value, reason in [
            ("negative", -1, "greater than or equal to 0"),
            ("string", "5", "number"),
            ("bool", True, "number"),
            ("list", [1], "number"),
            ("null", None, "null"),
        ]
    ],
    # Mass assignment: everything the answer shows is read-only.
    *[
        (f"read_only_{name}", {name: value}, name, "Unknown field")
        for name, value in [
            ("status", "succeeded"),
            ("result", [{"label": "POSITIVE", "score": 1.0}]),
            ("owner", "bob"),
            ("id", str(uuid.uuid4())),
            ("uuid", str(uuid.uuid4())),
            ("url", "http://x/"),
            ("top_label", "POSITIVE"),
            ("top_score", 1.0),
            ("attempts", 0),
            ("error", None),
            ("error_code", ""),
            ("cached", True),
            ("created_at", "2020-01-01"),
            ("finished_at", "2020-01-01"),
            ("source", {"type": "auth.user", "id": "1"}),
            ("backend", "offline"),
            ("scores", []),
            ("claim_token", str(uuid.uuid4())),
            ("lease_expires_at", None),
            ("text_hash", "0" * 64),
            ("next_attempt_at", None),
        ]
    ],
]
#: Fields of the drop-in body besides ``inputs``: (id, extra body, field, reason).
BAD_DROP_IN_FIELDS = [
    ("options_use_cache_string", {"options": {"use_cache": "yes"}}, "options", "boolean"),
    ("options_wait_for_model_number", {"options": {"wait_for_model": 1}}, "options", "boolean"),
    ("options_unknown", {"options": {"timeout": 5}}, "options", "Unknown field"),
    ("options_not_an_object", {"options": "fast"}, "options", "dictionary"),
    *[
        (f"unknown_{name}", {name: "x"}, name, "Unknown field")
        for name in ("model", "text", "texts", "status", "owner", "wait", "use_cache")
    ],
]


def field_cases():
    for name, extra, field_name, reason in BAD_SUBMIT_FIELDS:
        yield Case(
            f"submit-{name}",
            "POST",
            LIST_URL,
            400,
            field_name,
            reason,
            body_of({"text": "fine", **extra}),
        )
    yield Case(
        "submit-wait_infinite",
        "POST",
        LIST_URL,
        400,
        "wait",
        "valid number",
        b'{"text": "fine", "wait": 1e400}',
    )
    for name, extra, field_name, reason in BAD_DROP_IN_FIELDS:
        yield Case(
            f"drop_in-{name}",
            "POST",
            DROP_IN,
            400,
            field_name,
            reason,
            body_of({"inputs": "fine", **extra}),
        )


#: Headers: (id, endpoint URL, META, field, reason).
BAD_HEADERS = [
    *[
        (
            f"idempotency_key_{name}",
            LIST_URL,
            {"HTTP_IDEMPOTENCY_KEY": value},
            "Idempotency-Key",
            "visible ASCII",
        )
        for name, value in [
            ("empty", ""),
            ("256_characters", "k" * 256),
            ("space", "has space"),
            ("tab", "a\tb"),
            ("non_ascii", "cl\u00e9"),
            ("cyrillic", "\u043a\u043b\u044e\u0447"),
            ("nul", "key\x00"),
            ("lone_surrogate", "key\ud800"),
        ]
    ],
    *[
        (
            f"{header.lower()}_{name}",
            DROP_IN,
            {f"HTTP_{header}": value},
            header.lower().replace("_", "-"),
            "true or false",
        )
        for header in ("X_USE_CACHE", "X_WAIT_FOR_MODEL")
        for name, value in [
            ("maybe", "maybe"),
            ("empty", ""),
            ("nul", "true\x00"),
            ("two", "2"),
            ("lone_surrogate", "\ud800"),
        ]
    ],
]


def header_cases():
    for name, url, meta, field_name, reason in BAD_HEADERS:
        body = {"text": "fine"} if url == LIST_URL else {"inputs": "fine"}
        endpoint = "submit" if url == LIST_URL else "drop_in"
        yield Case(
            f"{endpoint}-header-{name}",
            "POST",
            url,
            400,
            field_name,
            reason,
            body_of(body),
            meta=meta,
        )


#: Model ids in the drop-in URL (after /api/models/): (id, path, reason).
BAD_MODEL_PATHS = [
    ("parent_path", "../admin"),
    ("deeper_parent_path", "org/../../admin"),
    ("three_parts", "a/b/c"),
    ("space", "has%20space/model"),
    ("leading_dash", "-lead/x"),
    ("trailing_slash", "org/"),
    ("part_too_long", "a" * 97),
    ("nul", "x%00y"),
    ("utf8_surrogate_bytes", "%ED%A0%80"),
    ("newline", "org/na%0Ame"),
    ("dot_dot", ".."),
    ("dot", "."),
    ("encoded_slashes", "x%2F..%2Fy"),
    ("url", "https:/evil.example/x"),
    ("encoded_question_mark", "a%3Fb"),
    ("encoded_hash", "a%23b"),
    ("backslash", "a%5Cb"),
    ("percent_sign", "a%25b"),
]


def model_path_cases():
    for name, path in BAD_MODEL_PATHS:
        yield Case(
            f"drop_in-model_id-{name}",
            "POST",
            f"/api/models/{path}",
            400,
            "model_id",
            "valid Hugging Face repository id",
            body_of({"inputs": "fine"}),
        )


#: ``Authorization`` headers no one may pass with: (id, value, reason per endpoint kind).
BAD_AUTHORIZATION = [
    ("token_without_key", "Token", "No credentials provided"),
    ("token_with_spaces", "Token a b", "should not contain spaces"),
    ("token_wrong", "Token not-a-real-token", "Invalid token"),
    ("token_nul_inside", "Token ab\x00cd", "Invalid Authorization header"),
    ("token_nul_alone", "Token \x00", "Invalid Authorization header"),
    ("bearer_nul", "Bearer \x00abc", "Invalid Authorization header"),
    ("token_lone_surrogate", "Token \ud800", "Invalid Authorization header"),
    ("token_utf8_surrogate_bytes", "Token \xed\xa0\x80", "invalid characters"),
    ("token_latin1", "Token caf\xe9", "invalid characters"),
    ("token_5000_characters", "Token " + "a" * 5000, "Invalid token"),
    ("basic", "Basic dXNlcjpwYXNz", "not provided"),
    ("empty", "", "not provided"),
]


def authorization_cases():
    for name, value, reason in BAD_AUTHORIZATION:
        for endpoint, method, url, body in (
            ("submit", "POST", LIST_URL, body_of({"text": "fine"})),
            ("drop_in", "POST", DROP_IN, body_of({"inputs": "fine"})),
            ("history", "GET", LIST_URL, None),
            ("stats", "GET", STATS, None),
        ):
            expected = reason
            if endpoint == "drop_in" and name in ("basic", "empty"):
                expected = "not provided"
            yield Case(
                f"{endpoint}-authorization-{name}",
                method,
                url,
                AUTH_FAILED[endpoint],
                "detail",
                expected,
                body,
                meta={"HTTP_AUTHORIZATION": value},
                user=None,
            )
    yield Case(
        "submit-authorization-bearer_where_only_token_is_known",
        "POST",
        LIST_URL,
        403,
        "detail",
        "not provided",
        body_of({"text": "fine"}),
        meta={"HTTP_AUTHORIZATION": "Bearer not-a-token"},
        user=None,
    )
    yield Case(
        "drop_in-authorization-bearer_wrong",
        "POST",
        DROP_IN,
        401,
        "detail",
        "Invalid token",
        body_of({"inputs": "fine"}),
        meta={"HTTP_AUTHORIZATION": "Bearer not-a-token"},
        user=None,
    )


#: Query strings of GET /classifications/ (already encoded): (id, query, status, field, reason).
BAD_HISTORY_QUERIES = [
    ("status_unknown", {"status": "done"}, 400, "status", "Unknown status"),
    ("status_upper_case", {"status": "PENDING"}, 400, "status", "Unknown status"),
    ("status_one_unknown", {"status": "pending,done"}, 400, "status", "Unknown status"),
    ("status_commas_only", {"status": ",,"}, 400, "status", "Unknown status"),
    ("status_nul", {"status": "pending\x00"}, 400, "status", "Null characters"),
    ("status_utf8_surrogate_bytes", "status=%ED%A0%80", 400, "status", "Unknown status"),
    ("model_nul", {"model": "a\x00b"}, 400, "model", "Null characters"),
    ("label_nul", {"label": "\x00"}, 400, "label", "Null characters"),
    ("created_after_words", {"created_after": "yesterday"}, 400, "created_after", "format"),
    ("created_after_month_13", {"created_after": "2020-13-01"}, 400, "created_after", "format"),
    (
        "created_after_year_999",
        {"created_after": "0999-01-01T00:00:00Z"},
        400,
        "created_after",
        "between the years",
    ),
    (
        "created_after_past_year_9999_in_utc",
        {"created_after": "9999-12-31T23:59:59-23:59"},
        400,
        "created_after",
        "out of range",
    ),
    (
        "created_after_bad_offset",
        {"created_after": "2020-01-01T00:00:00+99:00"},
        400,
        "created_after",
        "format",
    ),
    ("created_after_nul", {"created_after": "2020-01-01\x00"}, 400, "created_after", "format"),
    ("created_after_1000_digits", {"created_after": "9" * 1000}, 400, "created_after", "format"),
    (
        "created_after_utf8_surrogate_bytes",
        "created_after=%ED%A0%80",
        400,
        "created_after",
        "format",
    ),
    (
        "created_before_before_after",
        {"created_after": "2026-01-02T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
        400,
        "created_before",
        "later than",
    ),
    (
        "created_before_equal_to_after",
        {"created_after": "2026-01-01T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"},
        400,
        "created_before",
        "later than",
    ),
    (
        "source_type_unknown",
        {"source_type": "nope.nothing"},
        400,
        "source_type",
        "Unknown source type",
    ),
    ("source_type_without_dot", {"source_type": "blog"}, 400, "source_type", "Unknown source type"),
    ("source_type_nul", {"source_type": "auth.\x00user"}, 400, "source_type", "Null"),
    (
        "source_type_1000_characters",
        {"source_type": "a." + "b" * 1000},
        400,
        "source_type",
        "Unknown source type",
    ),
    ("source_id_without_type", {"source_id": "1"}, 400, "source_type", "Required"),
    ("source_id_nul", {"source_type": "auth.user", "source_id": "1\x00"}, 400, "source_id", "Null"),
    ("cursor_garbage", {"cursor": "garbage!!"}, 404, "detail", "Invalid cursor"),
    ("cursor_forged_position", {"cursor": "cD1ub3RhZGF0ZQ=="}, 404, "detail", "Invalid cursor"),
    ("cursor_forged_nul_position", {"cursor": "cD0A"}, 404, "detail", "Invalid cursor"),
    (
        "cursor_forged_year_9999",
        {"cursor": "cD05OTk5LTEyLTMxIDIzOjU5OjU5LTIzOjU5"},
        404,
        "detail",
        "Invalid cursor",
    ),
]
#: Query strings of GET /stats/: (id, query, field, reason).
BAD_STATS_QUERIES = [
    ("model_parent_path", {"model": "../x"}, "model", "repository id"),
    ("model_nul", {"model": "a\x00b"}, "model", "repository id"),
    ("model_utf8_surrogate_bytes", "model=%ED%A0%80", "model", "repository id"),
    ("since_words", {"since": "last week"}, "since", "format"),
    ("since_year_999", {"since": "0999-01-01T00:00:00Z"}, "since", "between the years"),
    ("since_nul", {"since": "\x00"}, "since", "format"),
    (
        "until_before_since",
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        "since",
        "earlier than until",
    ),
    ("bucket_week", {"bucket": "week"}, "bucket", "valid choice"),
    ("bucket_nul", {"bucket": "day\x00"}, "bucket", "valid choice"),
    (
        "window_over_1000_days",
        {"since": "2000-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        "since",
        "1000 day buckets",
    ),
    (
        "window_over_1000_hours",
        {"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z", "bucket": "hour"},
        "since",
        "1000 hour buckets",
    ),
]


def query_cases():
    for name, query, status, field_name, reason in BAD_HISTORY_QUERIES:
        yield Case(
            f"history-{name}", "GET", f"{LIST_URL}?{encoded(query)}", status, field_name, reason
        )
    for name, query, field_name, reason in BAD_STATS_QUERIES:
        yield Case(f"stats-{name}", "GET", f"{STATS}?{encoded(query)}", 400, field_name, reason)


def encoded(query):
    return query if isinstance(query, str) else urlencode(query)


#: Ids in the request URLs that are not the caller's: (id, which); ``{x}`` is a row of bob's.
FOREIGN_IDS = [
    ("other_users_pending", "{bob_pending}"),
    ("other_users_failed", "{bob_failed}"),
    ("other_users_succeeded", "{bob_succeeded}"),
    ("unknown_uuid", str(uuid.uuid4())),
    ("not_a_uuid", "not-a-uuid"),
    ("numeric_primary_key", "{bob_pending_pk}"),
    ("nul", "%00"),
    ("utf8_surrogate_bytes", "%ED%A0%80"),
    ("uuid_with_nul", "{bob_pending}%00"),
    ("sql", quote("1' OR '1'='1", safe="")),
]


def id_cases():
    for name, row_id in FOREIGN_IDS:
        for action, method in (("", "GET"), ("retry/", "POST"), ("cancel/", "POST")):
            kind = action.rstrip("/") or "retrieve"
            yield Case(
                f"{kind}-{name}",
                method,
                f"{LIST_URL}{row_id}/{action}",
                404,
                "detail",
                "No such classification request",
            )


#: Methods the endpoints do not allow: (id, method, url, body).
WRONG_METHODS = [
    ("detail_put", "PUT", f"{LIST_URL}{{alice_pending}}/", {"status": "succeeded"}),
    ("detail_patch", "PATCH", f"{LIST_URL}{{alice_pending}}/", {"status": "succeeded"}),
    ("detail_delete", "DELETE", f"{LIST_URL}{{alice_pending}}/", None),
    ("detail_post", "POST", f"{LIST_URL}{{alice_pending}}/", {"text": "a"}),
    ("list_delete", "DELETE", LIST_URL, None),
    ("list_put", "PUT", LIST_URL, {"text": "a"}),
    ("retry_get", "GET", f"{LIST_URL}{{alice_failed}}/retry/", None),
    ("stats_post", "POST", STATS, {"model": MODEL}),
    ("drop_in_get", "GET", DROP_IN, None),
    ("drop_in_put", "PUT", DROP_IN, {"inputs": "a"}),
    ("drop_in_delete", "DELETE", DROP_IN, None),
]


def method_cases():
    for name, method, url, body in WRONG_METHODS:
        yield Case(
            f"method-{name}",
            method,
            url,
            405,
            "detail",
            "not allowed",
            None if body is None else body_of(body),
        )


CASES = [
    *text_cases(),
    *batch_cases(),
    *body_cases(),
    *parameter_cases(),
    *field_cases(),
    *header_cases(),
    *model_path_cases(),
    *authorization_cases(),
    *query_cases(),
    *id_cases(),
    *method_cases(),
]


# --- running a case ----------------------------------------------------------------------


@pytest.fixture
def rows(alice, bob):
    """Rows of bob's that others must not reach, and alice's own, stored before the snapshot."""
    return {
        "bob_pending": stored(bob),
        "bob_failed": stored(bob, status=Status.FAILED),
        "bob_succeeded": stored(bob, status=Status.SUCCEEDED),
        "alice_pending": stored(alice),
        "alice_failed": stored(alice, status=Status.FAILED),
    }


def snapshot():
    """The row count of every table of the app, and the state of every stored request."""
    counts = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("django_textclass").get_models()
    }
    states = list(
        ClassificationRequest.objects.order_by("pk").values_list(
            "pk", "status", "attempts", "error_code", "next_attempt_at", "owner_id", "text"
        )
    )
    return counts, states


def send(case, rows, alice):
    url = case.url.format(
        **{name: row.uuid for name, row in rows.items()}, bob_pending_pk=rows["bob_pending"].pk
    )
    client = client_for(None)
    client.raise_request_exception = True  # a 500 fails the case loudly, with its traceback
    meta = dict(case.meta)
    if case.user == "alice":
        keyword = "Bearer" if case.drop_in else "Token"
        meta.setdefault("HTTP_AUTHORIZATION", f"{keyword} {Token.objects.get(user=alice).key}")
    extra = {}
    if case.body is not None:
        extra = {"data": case.body, "content_type": case.content_type}
    return client.generic(case.method, url, **extra, **meta)


@pytest.fixture
def no_waiting(settings):
    # A case that were accepted by mistake must not sit out the drop-in's wait.
    settings.TEXTCLASS = {**settings.TEXTCLASS, "INFERENCE_WAIT_SECONDS": 0.0}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input__clear_4xx_and_nothing_changed(case, rows, alice, no_waiting):
    Token.objects.get_or_create(user=alice)
    before = snapshot()

    response = send(case, rows, alice)

    assert response.status_code == case.status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    if case.drop_in:
        assert set(body) == {"error"}, body
        message = body["error"]
        if case.status == 400 and case.field not in ("detail", "non_field_errors"):
            assert f"{case.field}: " in message, message
    else:
        assert case.field in body, body
        message = json.dumps(body[case.field], ensure_ascii=False)
    assert case.reason.lower() in message.lower(), message
    assert snapshot() == before


def test_catalogue__every_entry_point_and_kind_is_covered():
    ids = [case.id for case in CASES]

    assert len(ids) == len(set(ids)), "case ids must be unique"
    for prefix in (
        "submit-",
        "drop_in-",
        "history-",
        "stats-",
        "retrieve-",
        "retry-",
        "cancel-",
        "method-",
    ):
        assert any(case_id.startswith(prefix) for case_id in ids), prefix
    assert len(ids) >= 200
