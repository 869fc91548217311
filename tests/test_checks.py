"""System checks on TEXTCLASS: stable ids, what they say."""

import copy

import pytest
from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

from django_textclass.backends.base import BaseBackend
from django_textclass.checks import check_settings

HF = "django_textclass.backends.huggingface.Backend"
OFFLINE = "django_textclass.backends.offline.Backend"
LOCMEM = "django_textclass.backends.locmem.Backend"
ROUTER = "https://router.huggingface.co/hf-inference/models/{model_id}"
RETIRED = "https://api-inference.huggingface.co/models/{model_id}"


def clean_config(**overrides):
    """A copy of the test settings' TEXTCLASS (which has a token) with ``overrides``."""
    config = copy.deepcopy(settings.TEXTCLASS)
    config.update(overrides)
    return config


def run_checks(config):
    with override_settings(TEXTCLASS=config):
        return check_settings()


def ids(messages):
    return [message.id for message in messages]


def test_check__clean_test_settings_give_no_messages():
    assert check_settings() == []


def test_check__clean_minimal_config_gives_no_messages():
    config = {"BACKENDS": {"default": {"BACKEND": HF, "OPTIONS": {"TOKEN": "hf_x"}}}}

    assert run_checks(config) == []


def test_check__registered_with_django():
    assert check_settings in checks.registry.registry.get_checks()


def test_call_command_check__passes_on_the_test_settings(capsys):
    call_command("check")

    assert "System check identified no issues" in capsys.readouterr().out


# Errors.


@pytest.mark.parametrize(
    "backend",
    [
        "django_textclass.backends.nope.Backend",
        "django_textclass.backends.offline.Nope",
        "nodots",
        "",
    ],
)
def test_check__e001_unimportable_backend(backend):
    config = clean_config(BACKENDS={"default": {"BACKEND": backend}})

    messages = run_checks(config)

    assert ids(messages) == ["textclass.E001"]
    assert isinstance(messages[0], checks.Error)
    assert "TEXTCLASS backend 'default'" in messages[0].msg
    assert "dotted path" in messages[0].hint


def test_check__e001_backend_config_without_backend_key():
    messages = run_checks(clean_config(BACKENDS={"default": {"OPTIONS": {}}}))

    assert ids(messages) == ["textclass.E001"]


def test_check__e002_default_backend_not_configured():
    messages = run_checks(clean_config(DEFAULT_BACKEND="missing"))

    assert ids(messages) == ["textclass.E002"]
    assert "'missing'" in messages[0].msg


@pytest.mark.parametrize(
    ("backend", "options", "words"),
    [
        (HF, {"TOKEN": "hf_x", "BATCHSIZE": 4}, "BATCHSIZE"),
        (HF, {"TOKEN": "hf_x", "API_URL": "ftp://example.com/{model_id}"}, "API_URL"),
        (OFFLINE, {"TOKEN": "hf_x"}, "TOKEN"),
    ],
    ids=["unknown_option", "bad_url", "offline_unknown_option"],
)
def test_check__e003_bad_options(backend, options, words):
    config = clean_config(BACKENDS={"default": {"BACKEND": backend, "OPTIONS": options}})

    messages = run_checks(config)

    assert ids(messages) == ["textclass.E003"]
    assert messages[0].msg.startswith("TEXTCLASS backend 'default' rejects its OPTIONS:")
    assert words in messages[0].msg


@pytest.mark.parametrize(
    "options", [{"READ_TIMEOUT": "soon"}, {"MAX_BATCH_SIZE": "many"}], ids=["timeout", "batch"]
)
def test_check__e003_non_numeric_option(options):
    config = clean_config(
        BACKENDS={"default": {"BACKEND": HF, "OPTIONS": {"TOKEN": "hf_x", **options}}}
    )

    assert ids(run_checks(config)) == ["textclass.E003"]


@pytest.mark.parametrize("options", [["TOKEN"], "TOKEN=x"], ids=["list", "str"])
def test_check__e003_options_not_a_dict(options):
    config = clean_config(BACKENDS={"default": {"BACKEND": OFFLINE, "OPTIONS": options}})

    assert ids(run_checks(config)) == ["textclass.E003"]


@pytest.mark.parametrize("backends", [None, ["default"], {"default": "offline"}])
def test_check__e006_backends_not_a_dict_of_dicts(backends):
    messages = run_checks(clean_config(BACKENDS=backends))

    assert ids(messages) == ["textclass.E006"]


def test_check__options_none_means_no_options():
    config = clean_config(BACKENDS={"default": {"BACKEND": OFFLINE, "OPTIONS": None}})

    assert run_checks(config) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_ATTEMPTS", 0),
        ("MAX_ATTEMPTS", -1),
        ("MAX_ATTEMPTS", True),
        ("MAX_ATTEMPTS", "5"),
        ("BATCH_SIZE", 0),
        ("MAX_TEXT_LENGTH", None),
        ("BATCH_SIZE", 2.5),
        ("MAX_ATTEMPTS", 3.0),
        ("LEASE_SECONDS", 0.5),
        ("RETRY_BACKOFF_BASE", -0.1),
        ("RETRY_BACKOFF_MAX", "300"),
        ("RETRY_HINT_MAX", -1),
        ("DISPATCH_GRACE_SECONDS", -5),
    ],
)
def test_check__e004_bad_numbers(name, value):
    messages = run_checks(clean_config(**{name: value}))

    assert ids(messages) == ["textclass.E004"]
    integers = {"MAX_TEXT_LENGTH", "BATCH_SIZE", "MAX_ATTEMPTS", "CIRCUIT_FAILURES"}
    kind = "an integer" if name in integers else "a number"
    assert f"TEXTCLASS[{name!r}] must be {kind} >=" in messages[0].msg
    assert repr(value) in messages[0].msg


@pytest.mark.parametrize("value", [-1, -0.5, "1h", False])
def test_check__e004_bad_cache_ttl(value):
    messages = run_checks(clean_config(CACHE_TTL=value))

    assert ids(messages) == ["textclass.E004"]
    assert "CACHE_TTL" in messages[0].msg


@pytest.mark.parametrize("value", [-1, -0.5, "1d", True])
def test_check__e004_bad_retry_deadline(value):
    messages = run_checks(clean_config(RETRY_DEADLINE=value))

    assert ids(messages) == ["textclass.E004"]
    assert "RETRY_DEADLINE" in messages[0].msg


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CIRCUIT_FAILURES", 0),
        ("CIRCUIT_FAILURES", 2.5),
        ("CIRCUIT_OPEN_SECONDS", -1),
        ("CIRCUIT_OPEN_MAX", "10m"),
        ("RATE_LIMIT_WAIT", None),
    ],
)
def test_check__e004_bad_pacing_numbers(name, value):
    messages = run_checks(clean_config(**{name: value}))

    assert ids(messages) == ["textclass.E004"]
    assert name in messages[0].msg


@pytest.mark.parametrize(
    "overrides",
    [
        {"CACHE_TTL": None},
        {"CACHE_TTL": 0},
        {"RETRY_BACKOFF_BASE": 0},
        {"MAX_ATTEMPTS": 1, "CIRCUIT_FAILURES": 1},
        {"RETRY_DEADLINE": None},
        {"RETRY_DEADLINE": 0},
        {"RATE_LIMIT_WAIT": 0},
        {"CIRCUIT_OPEN_SECONDS": 0},
    ],
)
def test_check__e004_boundary_values_are_fine(overrides):
    assert run_checks(clean_config(**overrides)) == []


def test_check__w005_circuit_failures_above_max_attempts():
    messages = run_checks(clean_config(MAX_ATTEMPTS=2, CIRCUIT_FAILURES=3))

    assert ids(messages) == ["textclass.W005"]
    assert "CIRCUIT_FAILURES" in messages[0].msg and "MAX_ATTEMPTS" in messages[0].msg


def test_check__e004_one_message_per_bad_number():
    messages = run_checks(clean_config(MAX_ATTEMPTS=0, CACHE_TTL=-1, BATCH_SIZE=0))

    assert ids(messages) == ["textclass.E004"] * 3


@pytest.mark.parametrize("model", ["../admin", "http://x/y", "", None])
def test_check__e005_bad_default_model(model):
    messages = run_checks(clean_config(DEFAULT_MODEL=model))

    assert ids(messages) == ["textclass.E005"]
    assert repr(model) in messages[0].msg


# Warnings.


def test_check__w001_retired_api_inference_host():
    options = {"TOKEN": "hf_x", "API_URL": RETIRED}
    config = clean_config(BACKENDS={"default": {"BACKEND": HF, "OPTIONS": options}})

    messages = run_checks(config)

    assert ids(messages) == ["textclass.W001"]
    assert isinstance(messages[0], checks.Warning)
    assert "api-inference.huggingface.co" in messages[0].msg
    assert ROUTER in messages[0].hint


def test_check__w002_hf_backend_without_token(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    config = clean_config(BACKENDS={"default": {"BACKEND": HF}})

    messages = run_checks(config)

    assert ids(messages) == ["textclass.W002"]
    assert "'default' has no Hugging Face token" in messages[0].msg
    assert "HF_TOKEN" in messages[0].hint
    assert "Make calls to Inference Providers" in messages[0].hint


def test_check__w002_not_raised_when_hf_token_env_is_set(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
    config = clean_config(BACKENDS={"default": {"BACKEND": HF}})

    assert run_checks(config) == []


def test_check__w002_not_raised_for_the_offline_backend(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    config = clean_config(BACKENDS={"default": {"BACKEND": OFFLINE}})

    assert run_checks(config) == []


def test_check__w003_unknown_keys():
    messages = run_checks(clean_config(BATCHSIZE=8, RETRIES=3))

    assert ids(messages) == ["textclass.W003"]
    assert "BATCHSIZE, RETRIES" in messages[0].msg


def test_check__w004_use_tz_off():
    with override_settings(USE_TZ=False):
        messages = run_checks(clean_config())

    assert ids(messages) == ["textclass.W004"]
    assert "USE_TZ = True" in messages[0].msg


def test_check__several_problems_are_all_reported(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    config = {
        "UNKNOWN": 1,
        "MAX_ATTEMPTS": 0,
        "DEFAULT_MODEL": "a..b",
        "DEFAULT_BACKEND": "nope",
        "BACKENDS": {
            "retired": {"BACKEND": HF, "OPTIONS": {"API_URL": RETIRED}},
            "broken": {"BACKEND": "no.such.Backend"},
        },
    }

    assert sorted(ids(run_checks(config))) == [
        "textclass.E001",
        "textclass.E002",
        "textclass.E004",
        "textclass.E005",
        "textclass.W001",
        "textclass.W002",
        "textclass.W003",
    ]


def test_call_command_check__fails_on_errors():
    from django.core.management.base import SystemCheckError

    with (
        override_settings(TEXTCLASS=clean_config(MAX_ATTEMPTS=0)),
        pytest.raises(SystemCheckError, match="textclass.E004"),
    ):
        call_command("check")


# The backends' own checks.


class CheckedBackend(BaseBackend):
    """A custom backend with one check of its own."""

    checked = []

    def __init__(self, *, REGION="eu", **options):
        super().__init__(**options)
        self.region = REGION

    def check(self):
        type(self).checked.append(self.alias)
        if self.region != "eu":
            return [checks.Warning(f"{self.alias}: region {self.region!r}", id="acme.W001")]
        return []


CHECKED = "tests.test_checks.CheckedBackend"


def test_check__a_backend_reports_through_its_check_hook():
    CheckedBackend.checked = []
    config = clean_config(
        BACKENDS={
            "default": {"BACKEND": CHECKED, "OPTIONS": {"REGION": "us"}},
            "quiet": {"BACKEND": CHECKED},
        }
    )

    messages = run_checks(config)

    assert ids(messages) == ["acme.W001"]
    assert "default: region 'us'" in messages[0].msg
    assert sorted(CheckedBackend.checked) == ["default", "quiet"]


def test_check__a_backend_that_rejects_its_options_is_not_asked_for_more():
    CheckedBackend.checked = []
    config = clean_config(BACKENDS={"default": {"BACKEND": CHECKED, "OPTIONS": {"ZONE": 1}}})

    messages = run_checks(config)

    assert ids(messages) == ["textclass.E003"]
    assert "ZONE" in messages[0].msg
    assert CheckedBackend.checked == []


def test_check__w001_w002_belong_to_the_hugging_face_backend(monkeypatch):
    """Another backend with an API_URL option or no token is not the Hugging Face one."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    config = clean_config(BACKENDS={"default": {"BACKEND": LOCMEM}})

    assert run_checks(config) == []


@pytest.mark.parametrize("rate", ["300", "5/day", 0])
def test_check__e007_bad_rate_limit(rate):
    backends = {"default": {"BACKEND": HF, "OPTIONS": {"TOKEN": "hf_x"}, "RATE_LIMIT": rate}}

    messages = run_checks(clean_config(BACKENDS=backends))

    assert ids(messages) == ["textclass.E007"]
    assert "RATE_LIMIT must look like '300/minute'" in messages[0].msg


@pytest.mark.parametrize("calls", [0, -2, 2.5, "4", True])
def test_check__e008_bad_calls_in_flight(calls):
    backends = {"default": {"BACKEND": HF, "OPTIONS": {"TOKEN": "hf_x"}, "CALLS_IN_FLIGHT": calls}}

    messages = run_checks(clean_config(BACKENDS=backends))

    assert ids(messages) == ["textclass.E008"]
    assert "CALLS_IN_FLIGHT must be an integer >= 1" in messages[0].msg


def test_check__calls_in_flight_of_8_is_fine():
    backends = {"default": {"BACKEND": HF, "OPTIONS": {"TOKEN": "hf_x"}, "CALLS_IN_FLIGHT": 8}}

    assert run_checks(clean_config(BACKENDS=backends)) == []


def test_check__a_good_rate_limit_is_fine():
    backends = {"default": {"BACKEND": HF, "OPTIONS": {"TOKEN": "hf_x"}, "RATE_LIMIT": "5/second"}}

    assert run_checks(clean_config(BACKENDS=backends)) == []


@pytest.mark.parametrize(
    ("url", "options", "warned"),
    [
        ("redis://127.0.0.1:6379/0", {}, True),
        ("redis://127.0.0.1:6379/0", {"socket_timeout": 10}, False),
        ("amqp://guest:guest@127.0.0.1:5672//", {"visibility_timeout": 3600}, True),
        ("amqp://guest:guest@127.0.0.1:5672//", {"read_timeout": 10}, False),
        ("filesystem://", {}, False),
        ("textclass-filesystem://", {}, False),
    ],
)
def test_check__w006_broker_without_socket_timeouts_on_deploy(monkeypatch, url, options, warned):
    from celery import current_app

    from django_textclass.checks import check_broker_timeouts

    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", url)
    monkeypatch.setitem(current_app.conf, "broker_transport_options", options)

    messages = check_broker_timeouts()

    assert ids(messages) == (["textclass.W006"] if warned else [])


def test_check__w006_is_a_deploy_check_only():
    from django.core.checks.registry import registry

    from django_textclass.checks import check_broker_timeouts

    assert check_broker_timeouts in registry.get_checks(include_deployment_checks=True)
    assert check_broker_timeouts not in registry.get_checks(include_deployment_checks=False)


def test_check__w007_without_the_projects_celery_app(monkeypatch):
    # What a web process sees when proj/__init__.py does not import proj/celery.py: no app
    # of the project exists, so Celery builds its fallback app on first use.
    from celery import _state

    from django_textclass.checks import check_celery_app

    monkeypatch.setattr(_state, "default_app", None)
    monkeypatch.setattr(_state._tls, "current_app", None)

    messages = check_celery_app()

    assert ids(messages) == ["textclass.W007"]
    assert "proj/__init__.py" in messages[0].hint
    assert _state.get_current_app().conf.broker_url is None  # not the project's broker


def test_check__w007_not_raised_with_the_projects_celery_app():
    from django_textclass.checks import check_celery_app

    assert check_celery_app() == []  # tests/__init__.py imports tests/celery.py
