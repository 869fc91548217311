"""``get_backend``: instances cached per alias, dropped when TEXTCLASS changes."""

import pytest
from django.test import override_settings

from django_textclass.backends import (
    backend_config,
    get_backend,
    huggingface,
    offline,
    reset_backends,
)
from django_textclass.exceptions import TextClassConfigurationError
from tests.backends.helpers import block_network

OFFLINE = {"BACKEND": "django_textclass.backends.offline.Backend"}


@pytest.fixture(autouse=True)
def _clean_registry(monkeypatch):
    block_network(monkeypatch)
    reset_backends()
    yield
    reset_backends()


def test_get_backend__caches_per_alias():
    first = get_backend("default")

    assert get_backend("default") is first
    assert get_backend("offline") is get_backend("offline")
    assert get_backend("offline") is not first


def test_get_backend__builds_the_configured_class_with_its_options():
    default = get_backend("default")

    assert isinstance(default, huggingface.Backend)
    assert isinstance(get_backend("offline"), offline.Backend)
    assert default.alias == "default"
    assert default.batch_size == 8  # MAX_BATCH_SIZE in tests/settings.py
    assert default.timeout == (5.0, 5.0)


def test_get_backend__no_alias_uses_default_backend():
    assert get_backend() is get_backend("default")

    with override_settings(TEXTCLASS={"BACKENDS": {"local": OFFLINE}, "DEFAULT_BACKEND": "local"}):
        assert get_backend() is get_backend("local")
        assert isinstance(get_backend(), offline.Backend)


def test_reset_backends__gives_a_new_instance_and_closes_the_old():
    first = get_backend("default")
    session = first.session

    reset_backends()

    assert get_backend("default") is not first
    assert first._session is None  # closed
    assert session is not get_backend("default").session


def test_override_settings__gives_a_new_instance():
    before = get_backend("default")

    with override_settings(TEXTCLASS={"BACKENDS": {"default": OFFLINE}}):
        inside = get_backend("default")
        assert isinstance(inside, offline.Backend)

    after = get_backend("default")
    assert isinstance(after, huggingface.Backend)
    assert after is not before


def test_get_backend__unknown_alias_raises_configuration_error():
    with pytest.raises(TextClassConfigurationError, match="'nope' is not configured") as info:
        get_backend("nope")

    assert "(configured: default, endpoint, offline, tei, tei-root)" in str(info.value)


def test_backend_config__no_backends_configured():
    with (
        override_settings(TEXTCLASS={"BACKENDS": {}}),
        pytest.raises(TextClassConfigurationError, match=r"configured: none"),
    ):
        backend_config("default")


@pytest.mark.parametrize(
    "path",
    [
        "django_textclass.backends.nope.Backend",
        "django_textclass.backends.offline.Nope",
        "not_a_path",
        "",
    ],
)
def test_get_backend__unimportable_path_raises_configuration_error(path):
    with (
        override_settings(TEXTCLASS={"BACKENDS": {"default": {"BACKEND": path}}}),
        pytest.raises(TextClassConfigurationError, match="Cannot import TEXTCLASS backend"),
    ):
        get_backend("default")


def test_get_backend__bad_options_raise_configuration_error():
    config = {"BACKENDS": {"default": {**OFFLINE, "OPTIONS": {"SPEED": "fast"}}}}

    with (
        override_settings(TEXTCLASS=config),
        pytest.raises(TextClassConfigurationError, match="SPEED"),
    ):
        get_backend("default")


def test_get_backend__constructor_type_error_is_a_configuration_error():
    # timedelta() takes no ``alias`` keyword: a TypeError, as from a backend with a bad signature.
    broken = {"default": {"BACKEND": "datetime.timedelta", "OPTIONS": {}}}
    with override_settings(TEXTCLASS={"BACKENDS": broken}):
        reset_backends()
        with pytest.raises(TextClassConfigurationError, match="rejects its OPTIONS"):
            get_backend("default")
    reset_backends()
