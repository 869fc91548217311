"""The bad-input catalogue of ``classify()``: every argument, every kind of bad value.

The contract (docs/pipeline.md#submit): a bad argument raises ``InvalidInputError``
naming it (``TextClassConfigurationError`` for a backend or long-text policy that is not
configured), nothing is stored and no wake-up is sent. Each case is one row of a table;
each runs on SQLite and on PostgreSQL, where NUL and lone surrogates fail differently.
"""

from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.contrib.auth.models import AnonymousUser

import django_textclass
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError

pytestmark = pytest.mark.django_db

MAX_TEXT = 20_000


@dataclass(frozen=True)
class Case:
    """``classify(texts, **kwargs)`` must raise ``error`` naming ``field``.

    Values that need the database (users, sources) are named in ``kwargs`` by a string
    starting with ``@`` and built by the test (:data:`OBJECTS`).
    """

    id: str
    texts: object
    kwargs: dict = field(default_factory=dict)
    field: str = "text"
    error: type = InvalidInputError


def _generator():
    yield "a generator is not a list"


#: Bad ``texts``: (id, texts, field).
BAD_TEXTS = [
    ("int", 5, "texts"),
    ("float", 2.5, "texts"),
    ("none", None, "texts"),
    ("bytes", b"bytes", "texts"),
    ("bytearray", bytearray(b"x"), "texts"),
    ("set", {"a"}, "texts"),
    ("dict", {"text": "a"}, "texts"),
    ("generator", _generator(), "texts"),
    ("empty_list", [], "texts"),
    ("empty_tuple", (), "texts"),
    ("int_in_list", [5], "text"),
    ("none_in_list", ["fine", None], "text"),
    ("bytes_in_list", [b"x"], "text"),
    ("list_in_list", [["a"]], "text"),
    ("empty", "", "text"),
    ("space", " ", "text"),
    ("whitespace", " \t\n\r\x0b\x0c", "text"),
    ("unicode_whitespace", "\u00a0\u3000", "text"),
    ("empty_in_list", ["fine", ""], "text"),
    ("nul_alone", "\x00", "text"),
    ("nul_inside", "a\x00b", "text"),
    ("nul_in_list", ["fine", "b\x00"], "text"),
    ("lone_high_surrogate", "\ud800", "text"),
    ("lone_low_surrogate", "x\udfffx", "text"),
    ("reversed_pair", "\udc00\ud800", "text"),
    ("surrogate_in_list", ["fine", "\udbff"], "text"),
    ("one_too_long", "x" * (MAX_TEXT + 1), "text"),
    ("one_too_long_in_list", ["fine", "x" * (MAX_TEXT + 1)], "text"),
    ("ten_thousand_and_one", ["fine"] * 10_001, "texts"),
]

#: Bad keyword arguments: (argument, [(id, value)], field).
BAD_ARGUMENTS = [
    (
        "model",
        [
            ("parent_path", "../admin"),
            ("dot_dot_inside", "owner/../admin"),
            ("url", "https://huggingface.co/acme/model"),
            ("space", "acme/my model"),
            ("three_parts", "a/b/c"),
            ("empty", ""),
            ("number", 5),
            ("bytes", b"gpt2"),
            ("nul", "x\x00y"),
            ("lone_surrogate", "\ud800"),
            ("part_too_long", "a" * 97),
            ("trailing_slash", "org/"),
            ("leading_dash", "-x"),
            ("query", "x?y"),
            ("fragment", "x#y"),
            ("hostile_path", "../../../x?y#z"),
        ],
        "model",
    ),
    (
        "function_to_apply",
        [
            ("unknown", "relu"),
            ("empty", ""),
            ("upper_case", "SOFTMAX"),
            ("number", 1),
            ("bool", True),
            ("nul", "sigmoid\x00"),
            ("lone_surrogate", "\ud800"),
        ],
        "function_to_apply",
    ),
    (
        "top_k",
        [
            ("zero", 0),
            ("negative", -1),
            ("over_1000", 1001),
            ("huge", 10**20),
            ("string", "3"),
            ("bool", True),
            ("float", 2.5),
            ("list", [3]),
        ],
        "top_k",
    ),
    (
        "use_cache",
        [
            ("string_no", "no"),
            ("none", None),
            ("zero", 0),
            ("one", 1),
            ("string_true", "true"),
        ],
        "use_cache",
    ),
    (
        "owner",
        [
            ("username", "alice"),
            ("number", 7),
            ("anonymous", AnonymousUser()),
            ("unsaved_user", "@unsaved_user"),
        ],
        "owner",
    ),
    (
        "source",
        [
            ("string", "comments/1"),
            ("number", 42),
            ("plain_object", object()),
            ("unsaved_instance", "@unsaved_user"),
        ],
        "source",
    ),
    (
        "source_field",
        [
            ("101_characters", "f" * 101),
            ("200_characters", "f" * 200),
            ("number", 5),
            ("none", None),
            ("bytes", b"bio"),
            ("nul", "bio\x00"),
            ("lone_surrogate", "\ud800"),
        ],
        "source_field",
    ),
    # An alias is a string; an unknown one is a configuration error (below).
    ("backend", [("number", 5), ("list", ["default"]), ("bytes", b"default")], "backend"),
]
#: Arguments the project configures: a wrong one is a configuration error, not bad input.
BAD_CONFIGURATION = [
    ("backend_unknown_alias", {"backend": "nope"}),
    ("long_text_unknown_policy", {"long_text": "nope"}),
    ("long_text_zero_chunks", {"long_text": {"POLICY": "split", "MAX_CHUNKS": 0}}),
    ("long_text_number", {"long_text": 5}),
]
#: Bad texts under a long-text policy: NUL and surrogates past the cut are refused too.
BAD_LONG_TEXTS = [
    ("nul_past_the_cut", "word " * 10 + "\x00"),
    ("surrogate_past_the_cut", "word " * 10 + "\ud800"),
    ("only_whitespace", " " * 100),
]


def cases():
    for name, texts, field_name in BAD_TEXTS:
        yield Case(f"texts-{name}", texts, field=field_name)
    for argument, values, field_name in BAD_ARGUMENTS:
        for name, value in values:
            kwargs = {argument: value}
            if argument == "source_field":
                kwargs["source"] = "@saved_user"
            yield Case(f"{argument}-{name}", "a good day", kwargs, field_name)
    for name, kwargs in BAD_CONFIGURATION:
        yield Case(name, "a good day", kwargs, error=TextClassConfigurationError)
    for policy in ("truncate", "split"):
        for name, text in BAD_LONG_TEXTS:
            spec = {"POLICY": policy, "MAX_LENGTH": 10}
            yield Case(f"long_text_{policy}-{name}", text, {"long_text": spec})


CASES = list(cases())


@pytest.fixture
def objects(django_user_model):
    return {
        "@saved_user": django_user_model.objects.create_user("saved"),
        "@unsaved_user": django_user_model(username="unsaved"),
    }


def snapshot():
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_app_config("django_textclass").get_models()
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_classify_bad_input__refused_and_nothing_stored(case, objects, sent):
    kwargs = {
        name: objects.get(value, value) if isinstance(value, str) else value
        for name, value in case.kwargs.items()
    }
    before = snapshot()

    with pytest.raises(case.error) as excinfo:
        django_textclass.classify(case.texts, **kwargs)

    if case.error is InvalidInputError:
        assert excinfo.value.field == case.field, excinfo.value
        assert str(excinfo.value).startswith(f"{case.field}: ")
    assert snapshot() == before
    assert sent.calls == []


def test_catalogue__every_argument_is_covered():
    import inspect

    from django_textclass.services import submit

    covered = {case.id.split("-")[0] for case in CASES}
    missing = {
        name
        for name in inspect.signature(submit).parameters
        if not any(case_id.startswith(name) for case_id in covered)
    }
    assert not missing, missing
    assert len({case.id for case in CASES}) == len(CASES)
