"""System checks of the API settings: textclass.E010-E013, W010, W011."""

import pytest
from django.core import checks
from django.test import override_settings

from django_textclass.api.checks import check_api_settings

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def run(settings, **textclass):
    settings.TEXTCLASS = {**settings.TEXTCLASS, **textclass}
    return check_api_settings()


def ids(messages):
    return [message.id for message in messages]


def test_clean_test_settings__no_messages():
    assert check_api_settings() == []


def test_registered_with_django():
    assert check_api_settings in checks.registry.registry.get_checks()


@pytest.mark.parametrize(("name", "value"), [
    ("API_MAX_BATCH", 0), ("API_MAX_BATCH", 2.5), ("API_MAX_BATCH", True),
    ("API_MAX_BODY_BYTES", "2MB"), ("API_PAGE_SIZE", -1), ("API_MAX_PAGE_SIZE", None),
    ("API_WAIT_POLL_SECONDS", 0), ("API_IDEMPOTENCY_TTL", 0),
    ("API_MAX_WAIT_SECONDS", -1), ("INFERENCE_WAIT_SECONDS", "10"),
    ("INFERENCE_WAIT_FOR_MODEL_SECONDS", -0.5),
])
def test_number_out_of_range__e010(settings, name, value):
    messages = run(settings, **{name: value})

    assert ids(messages) == ["textclass.E010"]
    assert name in messages[0].msg


@pytest.mark.parametrize("value", [0.1, 0, 30])
def test_number_in_range__accepted(settings, value):
    assert run(settings, API_MAX_WAIT_SECONDS=value, INFERENCE_WAIT_SECONDS=value) == []


@pytest.mark.parametrize("rate", ["60", "60/fortnight", "0/minute", "many/minute", 60])
def test_bad_throttle_rate__e011(settings, rate):
    assert ids(run(settings, API_THROTTLE_RATE=rate)) == ["textclass.E011"]


@pytest.mark.parametrize("rate", [None, "1/s", "60/minute", "1000/day", "5/hour"])
def test_good_throttle_rate__accepted(settings, rate):
    assert run(settings, API_THROTTLE_RATE=rate) == []


def test_throttle_cache_alias_missing__e012(settings):
    assert ids(run(settings, API_THROTTLE_CACHE="nope")) == ["textclass.E012"]


def test_unimportable_permission_class__e013(settings):
    messages = run(settings, API_PERMISSION_CLASSES=["no.such.Permission"])

    assert ids(messages) == ["textclass.E013"]


@override_settings(CACHES=LOCMEM)
def test_per_process_throttle_cache__w010(settings):
    messages = run(settings)

    assert ids(messages) == ["textclass.W010"]
    assert "LocMemCache" in messages[0].msg


@override_settings(CACHES=LOCMEM)
def test_per_process_cache_without_throttling__no_warning(settings):
    assert run(settings, API_THROTTLE_RATE=None) == []


def test_authtoken_not_installed__w011(monkeypatch):
    # Changing INSTALLED_APPS would re-run every app's ready(); hide the one app instead.
    from django.apps import apps

    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "rest_framework.authtoken" and installed(name)
    )

    assert ids(check_api_settings()) == ["textclass.W011"]
