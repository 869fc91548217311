"""Registration in code and in settings, and the system checks E020-E029 / W020."""

import pytest
from django.conf import settings as django_settings
from django.core import checks
from django.db import models
from django.db.models.signals import post_delete, post_save

import django_textclass
from django_textclass.conf import app_settings
from django_textclass.content import registry
from django_textclass.content.registry import RegistrationError, check_registry, site
from django_textclass.content.rules import Rule
from django_textclass.signals import classification_succeeded
from tests.content.helpers import SENTIMENT, requests_of
from tests.fakes import textclass_settings
from tests.testapp.models import Comment, Note

pytestmark = pytest.mark.django_db

NOTE_SPEC = {"FIELDS": ["text"], "MODELS": [SENTIMENT], "LONG_TEXT": "split_max"}


def ids(messages):
    return sorted(message.id for message in messages)


def test_register__public_alias_and_unregister(sent):
    registration = django_textclass.register(Note, ["text"], [SENTIMENT])
    try:
        assert site.get(Note) is registration
        assert requests_of(Note.objects.create(text="hello"))
    finally:
        assert django_textclass.unregister(Note) is True

    assert site.get(Note) is None
    assert requests_of(Note.objects.create(text="hello again")) == []
    assert django_textclass.unregister(Note) is False


def test_register__models_default_to_the_setting_read_late(sent, register):
    registration = register(Note, ["text"])

    with textclass_settings(DEFAULT_MODEL="acme/late"):
        assert registration.model_ids == ("acme/late",)
        (row,) = requests_of(Note.objects.create(text="hi"))
    assert row.model_id == "acme/late"


@pytest.mark.parametrize(
    ("args", "options", "check_id"),
    [
        ((models.Model, ["x"]), {}, "textclass.E020"),
        ((Note, []), {}, "textclass.E021"),
        ((Note, "text"), {}, "textclass.E021"),
        ((Note, ["nope"]), {}, "textclass.E021"),
        ((Note, ["text"], ["https://example.com/model"]), {}, "textclass.E022"),
        ((Note, ["text"]), {"condition": 42}, "textclass.E023"),
        ((Note, ["text"]), {"long_text": "summarise"}, "textclass.E024"),
        ((Note, ["text"]), {"rules": [{"LABEL": "X"}]}, "textclass.E025"),
        (
            (Note, ["text"]),
            {"rules": [{"LABEL": "X", "MIN_SCORE": 1.5, "ACTION": "a.b"}]},
            "textclass.E025",
        ),
        ((Comment, ["body"]), {}, "textclass.E027"),  # already registered by the test app
    ],
)
def test_register__bad_arguments_raise_with_the_check_id(args, options, check_id):
    with pytest.raises(RegistrationError) as info:
        site.register(*args, **options)

    assert info.value.check_id == check_id
    assert site.get(Note) is None


def test_settings_registration__loaded_connected_and_dropped_with_the_setting(sent):
    with textclass_settings(REGISTRY={"testapp.Note": NOTE_SPEC}):
        registration = site.get(Note)
        assert registration.origin == "settings"
        assert registration.policy.name == "split_max"
        assert post_save.has_listeners(Note) and post_delete.has_listeners(Note)
        assert requests_of(Note.objects.create(text="from settings"))
        assert check_registry() == []

    assert site.get(Note) is None
    assert not post_save.has_listeners(Note)
    assert requests_of(Note.objects.create(text="not any more")) == []


def rules_receiver_connected():
    return any(entry[0][0] == registry.RULES_UID for entry in classification_succeeded.receivers)


def test_rules_receiver__connected_only_while_a_registration_has_rules(sent):
    saved = {model: site._code.pop(model) for model in list(site._code)}
    try:
        site.load_settings()
        assert not rules_receiver_connected()
        django_textclass.register(Note, ["text"], [SENTIMENT])
        assert not rules_receiver_connected()  # a registration without rules
        django_textclass.unregister(Note)
        django_textclass.register(
            Note, ["text"], [SENTIMENT], rules=[Rule("NEGATIVE", 0.9, "tests.testapp.actions.hide")]
        )
        assert rules_receiver_connected()
        django_textclass.unregister(Note)
        assert not rules_receiver_connected()
    finally:
        site._code.update(saved)
        site.load_settings()
    assert rules_receiver_connected()  # the test app's Comment rules again


def test_reload__reads_the_new_registry_even_before_conf_drops_its_cache(sent, monkeypatch):
    assert app_settings.REGISTRY == {}  # cached now
    changed = {**django_settings.TEXTCLASS, "REGISTRY": {"testapp.Note": NOTE_SPEC}}
    # Changed without setting_changed, then the registry's receiver alone: as if it ran
    # before conf's own.
    monkeypatch.setattr(django_settings, "TEXTCLASS", changed)
    try:
        registry._reload(setting="TEXTCLASS")
        assert app_settings.REGISTRY == {}  # conf's cache is still the old value
        assert site.get(Note) is not None
    finally:
        monkeypatch.undo()
        site.load_settings()
    assert site.get(Note) is None


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ({"testapp.Nope": NOTE_SPEC}, ["textclass.E020"]),
        ({"nolabel": NOTE_SPEC}, ["textclass.E020"]),
        ({"testapp.Note": {**NOTE_SPEC, "FIELDS": ["body"]}}, ["textclass.E021"]),
        ({"testapp.Note": {**NOTE_SPEC, "MODELS": ["bad model id!"]}}, ["textclass.E022"]),
        ({"testapp.Note": {**NOTE_SPEC, "CONDITION": "tests.nowhere.cond"}}, ["textclass.E023"]),
        (
            {"testapp.Note": {**NOTE_SPEC, "LONG_TEXT": {"POLICY": "split", "KEEP": 1}}},
            ["textclass.E024"],
        ),
        (
            {
                "testapp.Note": {
                    **NOTE_SPEC,
                    "RULES": [{"LABEL": "A", "MIN_SCORE": -1, "ACTION": "x.y"}],
                }
            },
            ["textclass.E025"],
        ),
        ({"testapp.Note": {**NOTE_SPEC, "FIELD": ["text"]}}, ["textclass.E026"]),
        ({"testapp.Note": ["text"]}, ["textclass.E026"]),
        ({"testapp.Comment": NOTE_SPEC | {"FIELDS": ["body"]}}, ["textclass.E027"]),
        (
            {
                "testapp.Note": {
                    **NOTE_SPEC,
                    "RULES": [{"LABEL": "A", "MIN_SCORE": 0.5, "ACTION": "tests.nowhere.act"}],
                }
            },
            ["textclass.E028"],
        ),
        ({"testapp.Note": {**NOTE_SPEC, "BACKEND": "missing"}}, ["textclass.E029"]),
        (
            {
                "testapp.Note": {
                    **NOTE_SPEC,
                    "RULES": [
                        {
                            "LABEL": "A",
                            "MIN_SCORE": 0.5,
                            "ACTION": "tests.testapp.actions.hide",
                            "MODEL": "acme/other",
                        }
                    ],
                }
            },
            ["textclass.W020"],
        ),
    ],
)
def test_checks__each_problem_has_its_id(registry, expected, caplog):
    with textclass_settings(REGISTRY=registry):
        messages = check_registry()

    assert ids(messages) == expected
    assert all(isinstance(message, checks.CheckMessage) for message in messages)


def test_checks__registry_not_a_dict():
    with textclass_settings(REGISTRY=["testapp.Note"]):
        assert ids(check_registry()) == ["textclass.E026"]


def test_checks__the_test_apps_code_registrations_are_clean():
    assert check_registry() == []


def test_rule__defaults_and_callable_action():
    from tests.testapp.actions import hide

    rule = Rule("NEGATIVE", 0.9, hide)

    assert rule.action == "tests.testapp.actions.hide"
    assert rule.name == "NEGATIVE >= 0.9: tests.testapp.actions.hide"
    assert rule.get_action() is hide
