"""The model registry (TEXTCLASS["MODELS"]): keys resolved, entries checked, URLs guarded."""

import pytest

from django_textclass import catalog
from django_textclass.checks import check_models, check_settings
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError
from django_textclass.types import Parameters
from tests.fakes import textclass_settings

SST2 = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
ENDPOINT = "https://abc123.eu-west-1.aws.endpoints.huggingface.cloud/toxicity"
MODELS = {
    "sentiment": {"MODEL": SST2, "PARAMETERS": {"top_k": 2}, "REVISION": "714eb0f"},
    "toxicity": {
        "MODEL": ENDPOINT,
        "BACKEND": "offline",
        "PARAMETERS": {"function_to_apply": "sigmoid"},
    },
}


@pytest.fixture
def registry():
    with textclass_settings(MODELS=MODELS):
        yield


def ids(messages):
    return sorted(message.id for message in messages)


# --- resolve ------------------------------------------------------------------------------


def test_resolve__a_key_brings_its_backend_model_revision_and_defaults(registry):
    target = catalog.resolve("sentiment")

    assert target == catalog.Target("sentiment", "default", SST2, "714eb0f", Parameters(None, 2))


def test_resolve__given_parameters_replace_the_key_defaults(registry):
    target = catalog.resolve("toxicity", function_to_apply="softmax", top_k=1)

    assert (target.backend, target.model_id, target.revision) == ("offline", ENDPOINT, "")
    assert target.parameters == Parameters("softmax", 1)


def test_resolve__a_hub_id_gets_the_backend_asked_and_no_revision(registry):
    target = catalog.resolve("acme/other", backend="offline", top_k=3)

    assert target == catalog.Target("", "offline", "acme/other", "", Parameters(None, 3))


def test_resolve__none_is_the_default_model_which_may_be_a_key(registry, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MODELS": MODELS, "DEFAULT_MODEL": "sentiment"}

    assert catalog.resolve(None).key == "sentiment"


def test_resolve__owner_name_is_never_a_key():
    # A key cannot hold "/": owner/name ids and keys never collide.
    with textclass_settings(MODELS={"acme": {"MODEL": SST2}}):
        assert catalog.resolve("acme/acme").key == ""
        assert catalog.resolve("acme").key == "acme"


def test_resolve__with_a_registry_a_bare_name_must_be_a_key(registry):
    with pytest.raises(InvalidInputError) as info:
        catalog.resolve("sentimnet")

    assert info.value.field == "model"
    assert info.value.reason == (
        "not a model key of TEXTCLASS['MODELS'] (configured: sentiment, "
        "toxicity); a Hub model id is written owner/name"
    )


def test_resolve__without_a_registry_a_bare_hub_id_is_a_model_id():
    assert catalog.resolve("gpt2") == catalog.Target("", "default", "gpt2", "", Parameters())


def test_resolve__the_same_backend_as_the_key_may_be_repeated(registry):
    assert catalog.resolve("sentiment", backend="default").key == "sentiment"


def test_resolve__another_backend_than_the_key_s_is_refused(registry):
    with pytest.raises(InvalidInputError) as info:
        catalog.resolve("sentiment", backend="offline")

    assert info.value.field == "backend"
    assert "'sentiment' is served by the backend 'default'" in info.value.reason


@pytest.mark.parametrize("name", ["https://evil.example/m", "../x", "a b", "", None])
def test_resolve__neither_key_nor_hub_id__refused_naming_both(registry, name):
    with pytest.raises(InvalidInputError) as info:
        catalog.resolve(name) if name is not None else catalog.validate_name(name)

    assert info.value.field == "model"
    assert "neither a model key" in info.value.reason


def test_resolve__an_endpoint_url_is_only_reached_through_its_key(registry):
    assert catalog.resolve("toxicity").model_id == ENDPOINT
    with pytest.raises(InvalidInputError):
        catalog.resolve(ENDPOINT)


def test_resolve__without_a_registry_the_old_message():
    with pytest.raises(InvalidInputError, match="not a valid Hugging Face repository id"):
        catalog.resolve("../x")


def test_resolve__a_wrong_entry_is_a_configuration_error():
    with (
        textclass_settings(MODELS={"broken": {"MODEL": "../x"}}),
        pytest.raises(
            TextClassConfigurationError, match=r"TEXTCLASS\['MODELS'\]\['broken'\]: MODEL"
        ),
    ):
        catalog.resolve("broken")


def test_validate_name__keys_and_hub_ids(registry):
    assert catalog.validate_name("sentiment") == "sentiment"
    assert catalog.validate_name("acme/m") == "acme/m"


# --- may_send: what a stored row may make a backend call ---------------------------------


def test_may_send__hub_ids_and_configured_endpoints_only(registry):
    assert catalog.may_send(SST2)
    assert catalog.may_send(ENDPOINT)
    assert not catalog.may_send("https://abc123.eu-west-1.aws.endpoints.huggingface.cloud/x")
    assert not catalog.may_send("../../x?y#z")


def test_may_send__an_endpoint_removed_from_the_settings_is_refused():
    with textclass_settings(MODELS={}):
        assert not catalog.may_send(ENDPOINT)


# --- checks E040-E045, and E005 with a key ------------------------------------------------


def test_check__a_good_registry_is_quiet(registry):
    assert check_models() == []


def test_check__models_not_a_dict__e040():
    with textclass_settings(MODELS=["sentiment"]):
        assert ids(check_models()) == ["textclass.E040"]


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({"Sentiment": {"MODEL": SST2}}, "textclass.E041"),
        ({"a/b": {"MODEL": SST2}}, "textclass.E041"),
        ({"": {"MODEL": SST2}}, "textclass.E041"),
        ({"x" * 65: {"MODEL": SST2}}, "textclass.E041"),
        ({"s": SST2}, "textclass.E042"),
        ({"s": {}}, "textclass.E042"),
        ({"s": {"MODEL": SST2, "REVISON": "x"}}, "textclass.E042"),
        ({"s": {"MODEL": "../x"}}, "textclass.E042"),
        ({"s": {"MODEL": "ftp://host/m"}}, "textclass.E042"),
        ({"s": {"MODEL": "https://host/" + "m" * 200}}, "textclass.E042"),
        ({"s": {"MODEL": "https://host/a b"}}, "textclass.E042"),
        ({"s": {"MODEL": SST2, "BACKEND": "nope"}}, "textclass.E043"),
        ({"s": {"MODEL": SST2, "BACKEND": 3}}, "textclass.E043"),
        ({"s": {"MODEL": SST2, "PARAMETERS": ["top_k"]}}, "textclass.E044"),
        ({"s": {"MODEL": SST2, "PARAMETERS": {"topk": 2}}}, "textclass.E044"),
        ({"s": {"MODEL": SST2, "PARAMETERS": {"top_k": 0}}}, "textclass.E044"),
        ({"s": {"MODEL": SST2, "PARAMETERS": {"function_to_apply": "relu"}}}, "textclass.E044"),
        ({"s": {"MODEL": SST2, "REVISION": ""}}, "textclass.E045"),
        ({"s": {"MODEL": SST2, "REVISION": "a b"}}, "textclass.E045"),
        ({"s": {"MODEL": SST2, "REVISION": "../main"}}, "textclass.E045"),
        ({"s": {"MODEL": SST2, "REVISION": 7}}, "textclass.E045"),
        ({"s": {"MODEL": SST2, "REVISION": "r" * 101}}, "textclass.E045"),
    ],
)
def test_check__each_wrong_entry_has_its_id(models, expected):
    with textclass_settings(MODELS=models):
        messages = check_models()

    assert ids(messages) == [expected]
    assert messages[0].msg.startswith("TEXTCLASS['MODELS'][")


def test_check__every_problem_of_one_entry_is_reported():
    bad = {"s": {"MODEL": "../x", "BACKEND": "nope", "PARAMETERS": {"top_k": -1}, "REVISION": " "}}
    with textclass_settings(MODELS=bad):
        assert ids(check_models()) == [
            "textclass.E042",
            "textclass.E043",
            "textclass.E044",
            "textclass.E045",
        ]


@pytest.mark.parametrize("revision", ["main", "v1.2", "refs/pr/3", "714eb0f" * 5 + "abcde"])
def test_check__revisions_that_are_fine(revision):
    with textclass_settings(MODELS={"s": {"MODEL": SST2, "REVISION": revision}}):
        assert check_models() == []


def test_check__default_model_may_name_a_key(registry, settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MODELS": MODELS, "DEFAULT_MODEL": "sentiment"}

    assert "textclass.E005" not in ids(check_settings())


@pytest.mark.parametrize("default", ["no such", "sentimnet"])
def test_check__default_model_neither_key_nor_id__e005(registry, settings, default):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MODELS": MODELS, "DEFAULT_MODEL": default}

    messages = [m for m in check_settings() if m.id == "textclass.E005"]

    assert len(messages) == 1 and repr(default) in messages[0].msg


def test_check__models_is_a_known_setting():
    with textclass_settings(MODELS={}):
        assert "textclass.W003" not in ids(check_settings())
