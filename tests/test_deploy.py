"""The example project's production settings: ``check --deploy`` is clean, secrets come from
the environment only, and a missing one stops the process at start."""

import os
import secrets
import subprocess
import sys

import pytest

from tests.helpers import ROOT

HF_TOKEN = f"hf_deploy_{secrets.token_hex(16)}"
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "example_project.production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "textclass.example.com",
    "DATABASE_URL": "postgres://app:pw@127.0.0.1:5432/textclass",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "HF_TOKEN": HF_TOKEN,
}


def run(*command, **env):
    """``command`` in a Python process with the production environment (``env`` on top).

    Nothing of this process's environment leaks in but ``PATH``: a variable the test does
    not give is unset.
    """
    environment = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(ROOT / "example_project"), str(ROOT)]),
        **PRODUCTION,
        **env,
    }
    environment = {name: value for name, value in environment.items() if value is not None}
    return subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "broker", ["redis://127.0.0.1:6379/0", "amqp://guest:guest@127.0.0.1:5672//"]
)
def test_production_settings__check_deploy_is_clean(broker):
    result = run(
        "example_project/manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        CELERY_BROKER_URL=broker,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (1 silenced)." in result.stdout  # HSTS preload


def test_demo_settings__check_deploy_is_not_clean():
    """The check has teeth: the demo's settings (DEBUG, plain HTTP) fail it."""
    result = run(
        "example_project/manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="example_project.settings",
    )

    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG


@pytest.mark.parametrize(
    "name",
    [
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "REDIS_URL",
        "HF_TOKEN",
    ],
)
def test_production_settings__a_missing_variable_stops_the_start(name):
    result = run("-c", "import example_project.production", **{name: None})

    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name} must be set in the environment" in result.stderr


def test_production_settings__the_filesystem_broker_is_refused():
    result = run(
        "-c", "import example_project.production", CELERY_BROKER_URL="textclass-filesystem://"
    )

    assert result.returncode != 0
    assert "the filesystem broker serves one host" in result.stderr


def test_production_settings__the_token_is_in_no_setting():
    result = run("example_project/manage.py", "diffsettings", "--all")

    assert result.returncode == 0, result.stderr
    assert "TEXTCLASS" in result.stdout and "huggingface.Backend" in result.stdout
    assert HF_TOKEN not in result.stdout
    assert PRODUCTION["DJANGO_SECRET_KEY"] in result.stdout  # what diffsettings would show


def test_production_urls__the_health_view_is_mounted_for_monitors():
    result = run(
        "-c",
        "import django; django.setup(); from django.urls import reverse; "
        "print(reverse('textclass_health:health'))",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/textclass/health/"
