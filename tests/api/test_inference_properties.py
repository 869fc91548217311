"""The drop-in endpoint under any request: a JSON answer, never a server error.

Property-based (hypothesis): ``POST /api/models/{model_id}`` gets bodies drawn from valid
Inference API calls, near misses (a wrong type or value in one place, unknown keys), any
JSON at all and bytes that are not JSON, with drawn model ids, flag headers, content types
and ``Authorization`` headers. Whatever the draw, the answer is JSON and either

* 4xx ``{"error": "..."}``, with not one row written in any of the app's tables, or
* 2xx, or the endpoint's documented "not ready yet" 503 (``{"error", "estimated_time"}``
  and ``Retry-After``; no worker runs here, so a valid call ends there), naming in
  ``X-Textclass-Requests`` one stored request per input, in order.

Any other 5xx, an HTML page or an exception fails the property. The requests that used to
break it (lone surrogates in a name or in ``function_to_apply``, a NUL in the token, deeply
nested JSON, a body over Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``) are drawn like any other
where a draw can reach them, and each also has an explicit example at the end of the module.
"""

import json
from urllib.parse import quote

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from django_textclass.models import ClassificationRequest
from tests.api.helpers import MODEL

pytestmark = pytest.mark.django_db

# --- strategies ---------------------------------------------------------------------------

characters = st.characters(exclude_categories=())  # lone surrogates included
#: Strings drawn for names and values: any text, and lone surrogates, which a random draw
#: seldom makes.
strings = st.one_of(st.text(characters, max_size=12), st.sampled_from(["\ud800", "a\udfff"]))
often = st.sampled_from([True, True, True, False])


def mostly(valid, *invalid):
    """Valid values three times in four."""
    invalid = st.one_of(*invalid)
    return often.flatmap(lambda good: valid if good else invalid)


any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), strings),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(strings, children, max_size=4)
    ),
    max_leaves=12,
)
good_texts = st.text(characters, min_size=1, max_size=30).filter(
    lambda text: text.strip() and "\x00" not in text
)
texts = mostly(good_texts, st.sampled_from(["", "  ", "a\x00b", "x" * 60]), any_json)
inputs = mostly(
    st.one_of(good_texts, st.lists(good_texts, min_size=1, max_size=5)),
    texts,
    st.lists(texts, max_size=7),
    any_json,
)
parameters = mostly(
    st.fixed_dictionaries(
        {},
        optional={
            "function_to_apply": st.sampled_from(["sigmoid", "softmax", "none", None]),
            "top_k": st.one_of(st.none(), st.integers(1, 1000)),
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "function_to_apply": st.one_of(strings, any_json),
            "top_k": st.one_of(
                st.integers(), st.floats(allow_nan=False), st.text(max_size=3), st.booleans()
            ),
            "other": any_json,
        },
    ),
    any_json,
)
options = mostly(
    st.fixed_dictionaries(
        {}, optional={"use_cache": st.booleans(), "wait_for_model": st.booleans()}
    ),
    st.dictionaries(st.sampled_from(["use_cache", "wait_for_model", "x"]), any_json, max_size=2),
    any_json,
)
calls = st.fixed_dictionaries(
    {"inputs": inputs},
    optional={
        "parameters": parameters,
        "options": options,
        "extra": st.dictionaries(strings.filter(bool), any_json, max_size=2),
    },
).map(lambda body: {**{k: v for k, v in body.items() if k != "extra"}, **body.get("extra", {})})


@st.composite
def raw_bodies(draw):
    kind = draw(st.sampled_from(["call", "call", "call", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=40))
    document = draw(calls if kind == "call" else any_json)
    # Both encodings a client may send: escapes only, or UTF-8 as is.
    return json.dumps(document, ensure_ascii=draw(st.booleans())).encode("utf-8", "replace")


model_paths = mostly(
    st.sampled_from([MODEL, "gpt2", "acme/classifier-2"]),
    # A lone surrogate goes as the bytes a careless client would send (invalid UTF-8).
    st.text(characters, min_size=1, max_size=20).map(
        lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="/")
    ),
    st.sampled_from(["a/b/c", "..%2Fetc", "https%3A//x.y", "x/", "%20a"]),
)
flags = st.one_of(
    st.none(),
    st.sampled_from(["true", "false", "1", "0", "yes", " TRUE "]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=6),
)
authorization_alphabet = st.characters(max_codepoint=0xFF)  # a WSGI header is Latin-1
authorizations = mostly(
    st.just("valid"),
    st.none(),
    st.sampled_from(["Bearer", "Bearer ", "Bearer not-a-token", "Token x", "Basic Zm9vOmJhcg=="]),
    st.just("Bearer a\x00b"),
    st.text(authorization_alphabet, max_size=20).map(lambda text: f"Bearer {text}"),
    st.text(authorization_alphabet, max_size=20),
)
content_types = mostly(
    st.just("application/json"),
    st.sampled_from(
        ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", ""]
    ),
)


# --- the property -------------------------------------------------------------------------


def _rows_in_every_table():
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_app_config("django_textclass").get_models()
    }


@pytest.fixture
def drop_in(settings, alice):
    """No throttling (a draw must reach the validation) and Alice's Bearer token."""
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_THROTTLE_RATE": None}
    return Token.objects.create(user=alice).key


def post(path, body, content_type="application/json", authorization=None, **headers):
    extra = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in headers.items()
        if value is not None
    }
    if authorization is not None:
        extra["HTTP_AUTHORIZATION"] = authorization
    return Client().generic("POST", f"/api/models/{path}", body, content_type=content_type, **extra)


def _sent_inputs(body, content_type):
    """The input texts of a body that was accepted, read in the charset it was sent with."""
    charset = content_type.partition("charset=")[2] or "utf-8"
    document = json.loads(body.decode(charset))
    value = document["inputs"]
    return [value] if isinstance(value, str) else value


def _assert_answer(response, body, content_type, before):
    status = response.status_code
    assert response["Content-Type"].startswith("application/json"), (status, response.content)
    answer = json.loads(response.content)
    if 400 <= status < 500:
        assert set(answer) == {"error"} and isinstance(answer["error"], str), answer
        assert _rows_in_every_table() == before, "a refused call stored something"
        return
    assert status < 300 or status == 503, (status, answer)
    if status == 503:
        assert set(answer) == {"error", "estimated_time"}, answer
        assert response["Retry-After"].isdigit()
    ids = response["X-Textclass-Requests"].split(",")
    stored = [ClassificationRequest.objects.get(uuid=uuid) for uuid in ids]
    assert [row.text for row in stored] == _sent_inputs(body, content_type)


@given(
    body=raw_bodies(),
    path=model_paths,
    authorization=authorizations,
    use_cache=flags,
    wait_for_model=flags,
    content_type=content_types,
)
@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_drop_in__any_request_answers_json_and_never_a_server_error(
    drop_in, body, path, authorization, use_cache, wait_for_model, content_type
):
    authorization = f"Bearer {drop_in}" if authorization == "valid" else authorization
    before = _rows_in_every_table()
    with transaction.atomic():  # each draw starts from the same tables: rolled back
        try:
            response = post(
                path,
                body,
                content_type,
                authorization,
                x_use_cache=use_cache,
                x_wait_for_model=wait_for_model,
            )
            event(f"answered {response.status_code}")
            _assert_answer(response, body, content_type, before)
        finally:
            transaction.set_rollback(True)


# --- the requests that used to break it, one example each ---------------------------------


def _refused_with_json(response, before):
    assert 400 <= response.status_code < 500, response.status_code
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    assert set(response.json()) == {"error"}
    assert _rows_in_every_table() == before


def test_drop_in__deeply_nested_json_refused(drop_in):
    before = _rows_in_every_table()
    body = '{"inputs": ' + "[" * 100_000 + "]" * 100_000 + "}"

    response = post(MODEL, body, authorization=f"Bearer {drop_in}")

    _refused_with_json(response, before)


@pytest.mark.parametrize(
    "body",
    [
        '{"inputs": "I love it", "\\ud800": 1}',
        '{"inputs": "I love it", "parameters": {"function_to_apply": "\\udfff"}}',
        '{"inputs": "I love it", "parameters": {"\\ud83d": 1}}',
    ],
)
def test_drop_in__lone_surrogates_in_names_and_function_refused(drop_in, body):
    before = _rows_in_every_table()

    response = post(MODEL, body, authorization=f"Bearer {drop_in}")

    _refused_with_json(response, before)


def test_drop_in__nul_in_the_token_refused(drop_in):
    # PostgreSQL refuses a NUL in a query: the token lookup must not send it one.
    before = _rows_in_every_table()

    response = post(MODEL, '{"inputs": "I love it"}', authorization=f"Bearer ab\x00{drop_in}")

    assert response.status_code == 401
    _refused_with_json(response, before)


def test_drop_in__body_over_djangos_upload_limit_answered_with_json(drop_in, settings):
    """API_MAX_BODY_BYTES is the one limit: under it the call is served, over it a JSON 413."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_MAX_BODY_BYTES": 10_000}
    before = _rows_in_every_table()
    served = json.dumps({"inputs": "x" * 2000}).encode()

    response = post(MODEL, served, authorization=f"Bearer {drop_in}")
    _assert_answer(response, served, "application/json", before)
    assert response.status_code == 503  # stored, and no worker here to answer it

    before = _rows_in_every_table()
    response = post(MODEL, json.dumps({"inputs": "x" * 12_000}), authorization=f"Bearer {drop_in}")
    assert response.status_code == 413
    _refused_with_json(response, before)
