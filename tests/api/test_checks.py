"""System checks of the REST API: textclass.E010-E015, W010-W012, only where it is mounted."""

import pytest
from django.apps import apps
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

from django_textclass.api.checks import api_mounted, check_api_deploy, check_api_settings

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


def test_deploy_check__registered_for_check_deploy_only():
    registry = checks.registry.registry

    assert check_api_deploy in registry.get_checks(include_deployment_checks=True)
    assert check_api_deploy not in registry.get_checks(include_deployment_checks=False)


@pytest.mark.parametrize(
    ("urlconf", "mounted"),
    [
        ("tests.urls", True),
        ("tests.api.urlconfs.nested", True),
        ("tests.api.urlconfs.without_api", False),
    ],
)
def test_api_mounted__found_wherever_the_urlconf_includes_it(settings, urlconf, mounted):
    settings.ROOT_URLCONF = urlconf

    assert api_mounted() is mounted


@override_settings(
    ROOT_URLCONF="tests.api.urlconfs.without_api",
    CACHES=LOCMEM,
    REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "rest_framework.schemas.openapi.AutoSchema"},
)
def test_api_not_mounted__no_api_check_runs(settings, monkeypatch):
    # Every condition of an API warning holds; none applies to a project without the API.
    installed = apps.is_installed
    monkeypatch.setattr(
        apps,
        "is_installed",
        lambda name: name not in ("rest_framework.authtoken", "rest_framework") and installed(name),
    )

    assert run(settings, API_MAX_BATCH=0) == []
    assert check_api_deploy() == []


@override_settings(ROOT_URLCONF="tests.api.urlconfs.without_api", CACHES=LOCMEM)
def test_call_command_check_deploy__no_api_message_without_the_api(capsys):
    call_command("check", "--deploy", "--tag", "compatibility")

    assert "textclass.W01" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_MAX_BATCH", 0),
        ("API_MAX_BATCH", 2.5),
        ("API_MAX_BATCH", True),
        ("API_MAX_BODY_BYTES", "2MB"),
        ("API_PAGE_SIZE", -1),
        ("API_MAX_PAGE_SIZE", None),
        ("API_WAIT_POLL_SECONDS", 0),
        ("API_IDEMPOTENCY_TTL", 0),
        ("API_MAX_WAIT_SECONDS", -1),
        ("INFERENCE_WAIT_SECONDS", "10"),
        ("INFERENCE_WAIT_FOR_MODEL_SECONDS", -0.5),
    ],
)
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
def test_per_process_throttle_cache__w010_on_deploy_only(settings):
    messages = check_api_deploy()

    assert ids(messages) == ["textclass.W010"]
    assert "LocMemCache" in messages[0].msg
    assert run(settings) == []  # a plain `check`: a local cache is fine in development


@override_settings(CACHES=LOCMEM)
def test_per_process_cache_without_throttling__no_warning(settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "API_THROTTLE_RATE": None}

    assert check_api_deploy() == []


@override_settings(CACHES=LOCMEM)
def test_call_command_check_deploy__reports_w010(capsys):
    call_command("check", "--deploy", "--tag", "compatibility")

    assert "textclass.W010" in capsys.readouterr().err


def test_unimportable_throttle_class__e013(settings):
    messages = run(settings, API_THROTTLE_CLASSES=["no.such.Throttle"])

    assert ids(messages) == ["textclass.E013"]
    assert "API_THROTTLE_CLASSES" in messages[0].msg


def test_rest_framework_not_installed__e014(settings, monkeypatch):
    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "rest_framework" and installed(name)
    )

    messages = run(settings)

    assert ids(messages) == ["textclass.E014"]
    assert "INSTALLED_APPS" in messages[0].hint


@pytest.mark.parametrize(
    "schema_class",
    [
        None,  # unset: DRF's default, rest_framework.schemas.openapi.AutoSchema
        "rest_framework.schemas.coreapi.AutoSchema",
        "no.such.AutoSchema",
    ],
)
def test_schema_class_not_drf_spectacular__e015(settings, schema_class):
    rest = {
        key: value
        for key, value in settings.REST_FRAMEWORK.items()
        if key != "DEFAULT_SCHEMA_CLASS"
    }
    if schema_class:
        rest["DEFAULT_SCHEMA_CLASS"] = schema_class
    settings.REST_FRAMEWORK = rest

    messages = run(settings)

    assert ids(messages) == ["textclass.E015"]
    assert "drf_spectacular.openapi.AutoSchema" in messages[0].hint


def test_schema_class__a_subclass_of_drf_spectacular_is_fine(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_SCHEMA_CLASS": "tests.api.project.OwnSchema",
    }

    assert run(settings) == []


@pytest.mark.parametrize(
    ("rest", "textclass"),
    [
        ({}, None),  # DRF's own default: AllowAny
        ({"DEFAULT_PERMISSION_CLASSES": []}, None),
        (
            {"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]},
            ["rest_framework.permissions.AllowAny"],
        ),
    ],
)
def test_anyone_may_submit__w012(settings, rest, textclass):
    settings.REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema", **rest}

    messages = run(settings, API_PERMISSION_CLASSES=textclass)

    assert ids(messages) == ["textclass.W012"]
    assert "DEFAULT_PERMISSION_CLASSES" in messages[0].hint


@pytest.mark.parametrize(
    ("rest", "textclass"),
    [
        ({"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}, None),
        ({}, ["django_textclass.api.permissions.IsOwnerOrStaff"]),
        (
            {
                "DEFAULT_PERMISSION_CLASSES": [
                    "rest_framework.permissions.IsAuthenticatedOrReadOnly"
                ]
            },
            None,
        ),
    ],
)
def test_only_known_users_may_submit__no_w012(settings, rest, textclass):
    settings.REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema", **rest}

    assert run(settings, API_PERMISSION_CLASSES=textclass) == []


def test_authtoken_not_installed__w011(monkeypatch):
    # Changing INSTALLED_APPS would re-run every app's ready(); hide the one app instead.
    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "rest_framework.authtoken" and installed(name)
    )

    assert ids(check_api_settings()) == ["textclass.W011"]
