"""The lazy ``TEXTCLASS`` settings object."""

import pytest
from django.test import override_settings

from django_textclass.conf import DEFAULT_MODEL, DEFAULTS, AppSettings, app_settings


@pytest.fixture
def fresh():
    """An AppSettings of its own, so tests do not depend on what others cached."""
    return AppSettings()


def test_defaults__when_textclass_is_empty(fresh):
    with override_settings(TEXTCLASS={}):
        for name, default in DEFAULTS.items():
            assert getattr(fresh, name) == default


def test_defaults__when_textclass_is_none(fresh):
    with override_settings(TEXTCLASS=None):
        assert fresh.MAX_ATTEMPTS == 5
        assert fresh.unknown_keys() == []


def test_defaults__documented_values():
    assert DEFAULTS["DEFAULT_BACKEND"] == "default"
    assert DEFAULTS["DEFAULT_MODEL"] == DEFAULT_MODEL
    assert DEFAULT_MODEL == "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    assert DEFAULTS["BACKENDS"]["default"]["BACKEND"] == (
        "django_textclass.backends.huggingface.Backend"
    )
    assert DEFAULTS["MAX_ATTEMPTS"] == 5
    assert DEFAULTS["BATCH_SIZE"] == 128
    assert DEFAULTS["CACHE_TTL"] == 7 * 24 * 3600
    assert DEFAULTS["QUEUE"] is None


def test_user_values__override_defaults_key_by_key(fresh):
    with override_settings(TEXTCLASS={"BATCH_SIZE": 4, "QUEUE": "textclass"}):
        assert fresh.BATCH_SIZE == 4
        assert fresh.QUEUE == "textclass"
        assert fresh.MAX_ATTEMPTS == 5  # the default


def test_user_values__from_the_test_settings():
    # tests/settings.py sets these.
    assert app_settings.MAX_ATTEMPTS == 4
    assert app_settings.RETRY_BACKOFF_BASE == 0.2
    assert set(app_settings.BACKENDS) == {"default", "offline", "tei", "tei-root", "endpoint"}
    assert app_settings.BATCH_SIZE == 128  # not set there: the default


def test_unknown_attribute__raises_attribute_error(fresh):
    with pytest.raises(AttributeError, match="Invalid TEXTCLASS setting: 'NOT_A_SETTING'"):
        fresh.NOT_A_SETTING  # noqa: B018

    assert not hasattr(app_settings, "BATCHSIZE")


def test_unknown_attribute__user_key_is_not_readable(fresh):
    with override_settings(TEXTCLASS={"EXTRA": 1}), pytest.raises(AttributeError):
        fresh.EXTRA  # noqa: B018


def test_reload__override_settings_is_seen_and_undone():
    before = app_settings.MAX_ATTEMPTS

    with override_settings(TEXTCLASS={"MAX_ATTEMPTS": 9}):
        assert app_settings.MAX_ATTEMPTS == 9
        with override_settings(TEXTCLASS={"MAX_ATTEMPTS": 2}):
            assert app_settings.MAX_ATTEMPTS == 2
        assert app_settings.MAX_ATTEMPTS == 9

    assert app_settings.MAX_ATTEMPTS == before == 4


def test_reload__values_are_cached_until_reload(fresh):
    user = {"BATCH_SIZE": 3}
    with override_settings(TEXTCLASS=user):
        assert fresh.BATCH_SIZE == 3
        user["BATCH_SIZE"] = 6  # no setting_changed signal: the cached value stays
        assert fresh.BATCH_SIZE == 3

        fresh.reload()

        assert fresh.BATCH_SIZE == 6


def test_reload__only_textclass_changes_reload(monkeypatch):
    calls = []
    monkeypatch.setattr(app_settings, "reload", lambda: calls.append("reload"))

    with override_settings(DEBUG=True):
        pass
    assert calls == []

    with override_settings(TEXTCLASS={"BATCH_SIZE": 3}):
        pass
    assert calls == ["reload", "reload"]  # on enter and on exit


def test_unknown_keys__lists_keys_this_version_does_not_know(fresh):
    with override_settings(TEXTCLASS={"FOO": 1, "BAR": 2, "BATCH_SIZE": 3}):
        assert fresh.unknown_keys() == ["BAR", "FOO"]


def test_unknown_keys__none_on_the_test_settings():
    assert app_settings.unknown_keys() == []
