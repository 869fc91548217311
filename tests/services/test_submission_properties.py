"""classify() under any arguments: it stores what was asked, or refuses and stores nothing.

Property-based (hypothesis): each argument is drawn from valid values and from values that
are wrong in type, range or content, in every combination. For each draw, ``classify()``
either returns the requests it stored, and they hold exactly what was asked, or raises
:class:`InvalidInputError` naming an argument, with not one row written in any of the app's
tables. The documented configuration error (an unknown backend alias, a malformed long-text
policy) is the one other way out, and it stores nothing either.

The values that used to break it (lone surrogates, a ``use_cache`` that is not a bool, an
oversized ``source_field``, an unsaved or non-model ``source``, an ``owner`` that is not a saved
user, too many texts) are drawn like any other, and each also has an explicit example at the
end of the module. A defect still open is left out of the strategies by a named exclusion
and has an ``xfail(strict=True)`` example: once it is fixed the example passes, the strict mark
turns that into a failure, and the mark and the exclusion go together.
"""

from dataclasses import dataclass

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import django_textclass
from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError
from django_textclass.models import ClassificationRequest
from django_textclass.services.submission import MAX_TEXTS_PER_SUBMIT
from tests.fakes import textclass_settings
from tests.services.helpers import MODEL

pytestmark = pytest.mark.django_db

#: Short, so that drawn texts cross it (the policies read it too).
MAX_TEXT_LENGTH = 40
ARGUMENTS = {
    "texts",
    "text",
    "model",
    "function_to_apply",
    "top_k",
    "owner",
    "source",
    "source_field",
    "use_cache",
    "backend",
    "long_text",
}

# --- strategies ---------------------------------------------------------------------------

# Every character, lone surrogates ("\ud800") included; a random draw seldom makes one, so a
# few are also drawn on purpose.
characters = st.characters(exclude_categories=())
odd_texts = st.sampled_from(["\ud800", "I love it \udfff", "\ud83d"])


often = st.sampled_from([True, True, True, False])


def mostly(valid, *invalid):
    """Valid values three times in four: a draw then often reaches the storing path."""
    if not invalid:  # every invalid value is excluded, for now
        return valid
    invalid = st.one_of(*invalid)
    return often.flatmap(lambda good: valid if good else invalid)


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
good_texts = st.text(characters, min_size=1, max_size=MAX_TEXT_LENGTH).filter(
    lambda text: text.strip() and "\x00" not in text
)
any_texts = mostly(
    good_texts,
    st.text(characters, max_size=MAX_TEXT_LENGTH + 30),  # blank, NUL, too long
    st.sampled_from(["", " ", "\t\n", "a\x00b", "x" * (MAX_TEXT_LENGTH + 1), "word " * 12]),
    odd_texts,
)
model_ids = mostly(
    st.one_of(
        st.none(),
        st.sampled_from([MODEL, "gpt2", "a" * 96 + "/" + "b" * 96, "x.y_z-1/A.b"]),
        st.from_regex(
            r"[A-Za-z0-9]([A-Za-z0-9_-]{0,10}[A-Za-z0-9])?"
            r"(/[A-Za-z0-9]([A-Za-z0-9_-]{0,10}[A-Za-z0-9])?)?",
            fullmatch=True,
        ),
    ),
    st.sampled_from(
        ["a/b/c", "../etc", "https://x.y/m", "owner/", "-x/y", "x..y/z", " a/b", "", "a" * 97]
    ),
    st.text(characters, max_size=30),
    junk,
)
functions = mostly(
    st.sampled_from([None, "sigmoid", "softmax", "none"]),
    st.sampled_from(["SIGMOID", "", "relu"]),
    st.text(characters, max_size=10),
    junk,
)
top_ks = mostly(
    st.one_of(st.none(), st.integers(1, 1000)),
    st.integers(-3, 0),
    st.integers(1001, 2**40),
    st.booleans(),
    st.floats(),
    st.text(max_size=4),
)
use_caches = mostly(st.booleans(), junk, st.sampled_from(["no", "false", "", "True"]))
backends = mostly(
    st.sampled_from([None, "default", "other"]),
    st.sampled_from(["", "nope", "DEFAULT"]),
    st.text(characters, max_size=8),
    st.integers(),
    st.lists(st.text(max_size=2), min_size=1),
)
long_texts = mostly(
    st.one_of(
        st.sampled_from([None, "reject", "truncate", "truncate_head_tail", "split", "split_max"]),
        st.fixed_dictionaries(
            {"POLICY": st.sampled_from(["split", "truncate", "reject"])},
            optional={"MAX_LENGTH": st.integers(1, 60)},
        ),
    ),
    st.sampled_from(
        [
            "nope",
            {"POLICY": "x"},
            {"POLICY": "split", "COMBINE": "median"},
            {"POLICY": "split", "MAX_CHUNKS": 0},
            {"POLICY": "truncate", "COMBINE": "max"},
            {"POLICY": "split", "MAX_LENGTH": "5"},
        ]
    ),
    st.integers(),
)
# Stand-ins for objects, made in the test (a strategy cannot reach the test's database rows).
owner_kinds = mostly(
    st.sampled_from([None, "saved"]), st.sampled_from(["unsaved", "name", "object"])
)
source_kinds = mostly(
    st.sampled_from([None, "saved"]), st.sampled_from(["unsaved", "string", "object"])
)
source_fields = mostly(
    st.text(characters, max_size=100),  # the column's length
    st.text(characters, min_size=101, max_size=300),
    odd_texts,
)


@dataclass
class Call:
    texts: object
    kwargs: dict
    owner: object
    source: object


@st.composite
def calls(draw):
    texts = draw(
        mostly(
            st.one_of(
                any_texts,
                st.lists(any_texts, min_size=1, max_size=6),
                st.lists(any_texts, min_size=1, max_size=3).map(tuple),
            ),
            st.just([]),
            st.lists(st.one_of(any_texts, junk), min_size=1, max_size=3),
            junk,
        )
    )
    kwargs = {}
    for name, strategy in [
        ("model", model_ids),
        ("function_to_apply", functions),
        ("top_k", top_ks),
        ("use_cache", use_caches),
        ("backend", backends),
        ("long_text", long_texts),
        ("source_field", source_fields),
    ]:
        if draw(often):
            kwargs[name] = draw(strategy)
    return Call(texts, kwargs, draw(owner_kinds), draw(source_kinds))


# --- the property -------------------------------------------------------------------------


def _rows_in_every_table():
    return {
        model._meta.label: model.objects.count()
        for model in apps.get_app_config("django_textclass").get_models()
    }


def _object(kind, saved):
    return {
        None: None,
        "saved": saved,
        "unsaved": get_user_model()(username="unsaved"),
        "name": "alice",
        "object": object(),
        "string": "a text",
    }[kind]


def _documented_configuration_error(call):
    """An unknown backend alias or a malformed long-text policy (documented to raise so)."""
    backend = call.kwargs.get("backend")
    unknown_alias = isinstance(backend, str) and backend and backend not in app_settings.BACKENDS
    return unknown_alias or call.kwargs.get("long_text") is not None


def _assert_stored_as_asked(call, result, owner, source):
    single = isinstance(call.texts, str)
    rows = [result] if single else result
    texts = [call.texts] if single else list(call.texts)
    assert isinstance(rows, list) and len(rows) == len(texts)
    kwargs = call.kwargs
    for row, text in zip(rows, texts, strict=True):
        stored = ClassificationRequest.objects.get(pk=row.pk)
        assert stored.model_id == (kwargs.get("model") or app_settings.DEFAULT_MODEL)
        assert stored.function_to_apply == (kwargs.get("function_to_apply") or "")
        assert stored.top_k == kwargs.get("top_k")
        assert stored.use_cache is bool(kwargs.get("use_cache", True))
        assert stored.backend == (kwargs.get("backend") or app_settings.DEFAULT_BACKEND)
        assert stored.owner_id == (owner.pk if owner is not None else None)
        if kwargs.get("long_text") is None:
            assert stored.text == text
        else:
            assert stored.long_text_policy and stored.source_length == len(text)
            assert len(stored.text) <= len(text) + len(" ... ")
        if source is None:
            assert (stored.content_type_id, stored.object_id) == (None, "")
        else:
            assert stored.source == source
            assert stored.source_field == kwargs.get("source_field", "")


@given(call=calls())
@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_classify__any_arguments_store_what_was_asked_or_raise_invalid_input(call, alice, bob):
    owner, source = _object(call.owner, alice), _object(call.source, bob)
    kwargs = {**call.kwargs, "owner": owner, "source": source}
    before = _rows_in_every_table()
    with transaction.atomic():  # each draw starts from the same tables: rolled back
        try:
            with textclass_settings(MAX_TEXT_LENGTH=MAX_TEXT_LENGTH):
                try:
                    result = django_textclass.classify(call.texts, **kwargs)
                except InvalidInputError as exc:
                    event(f"refused: {exc.field}")
                    assert exc.field in ARGUMENTS, exc
                    assert _rows_in_every_table() == before
                    return
                except TextClassConfigurationError:
                    event("configuration error")
                    assert _documented_configuration_error(call)
                    assert _rows_in_every_table() == before
                    return
                event("stored")
                _assert_stored_as_asked(call, result, owner, source)
        finally:
            transaction.set_rollback(True)


# --- the values that used to break it, one example each ----------------------------------


def _refused_and_nothing_stored(texts, **kwargs):
    before = _rows_in_every_table()
    # The atomic block: a database error must not end the test's transaction.
    with pytest.raises(InvalidInputError), transaction.atomic():
        django_textclass.classify(texts, **kwargs)
    assert _rows_in_every_table() == before


@pytest.mark.parametrize("text", ["\ud800", "I love it \udfff", ["fine", "x\ud83d"]])
def test_classify__lone_surrogates_refused(text):
    _refused_and_nothing_stored(text)


@pytest.mark.parametrize("use_cache", ["no", None, "false", []])
def test_classify__use_cache_not_a_boolean_refused(use_cache):
    _refused_and_nothing_stored("I love it", use_cache=use_cache)


def test_classify__source_field_longer_than_its_column_refused(alice):
    _refused_and_nothing_stored("I love it", source=alice, source_field="f" * 200)


def test_classify__unsaved_source_refused():
    _refused_and_nothing_stored("I love it", source=ContentType(app_label="x", model="y"))


def test_classify__one_text_more_than_the_limit_refused():
    _refused_and_nothing_stored(["I love it"] * (MAX_TEXTS_PER_SUBMIT + 1))


@pytest.mark.parametrize("kind", ["unsaved", "name", "object"])
def test_classify__owner_not_a_saved_user_refused(kind, alice):
    _refused_and_nothing_stored("I love it", owner=_object(kind, alice))


@pytest.mark.parametrize("kind", ["string", "object"])
def test_classify__source_not_a_model_instance_refused(kind, alice):
    _refused_and_nothing_stored("I love it", source=_object(kind, alice))


def test_classify__unhashable_backend_alias_refused():
    before = _rows_in_every_table()
    with pytest.raises(InvalidInputError):
        django_textclass.classify("I love it", backend=["default"])
    assert _rows_in_every_table() == before
