"""Models and migrations never drift, whatever the project's DEFAULT_AUTO_FIELD."""

import os
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import models
from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent


def makemigrations_check():
    """Run ``makemigrations --check --dry-run``; return its output (SystemExit on drift)."""
    out = StringIO()
    call_command("makemigrations", "django_textclass", "--check", "--dry-run", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_makemigrations__no_drift():
    # The test settings use AutoField: without the app's pinned field this would drift.
    assert settings.DEFAULT_AUTO_FIELD == "django.db.models.AutoField"

    assert "No changes detected" in makemigrations_check()


@pytest.mark.django_db
@override_settings(DEFAULT_AUTO_FIELD="django.db.models.BigAutoField")
def test_makemigrations__no_drift_with_big_auto_field():
    assert "No changes detected" in makemigrations_check()


def test_app_config__pins_the_auto_field():
    config = apps.get_app_config("django_textclass")

    assert config.default_auto_field == "django.db.models.BigAutoField"
    for model in config.get_models():
        pk = model._meta.pk
        # The roll-up's day tables are keyed by their day; every other model by an id.
        assert isinstance(pk, models.BigAutoField) or not pk.auto_created, model
    assert {m.__name__ for m in config.get_models() if not m._meta.pk.auto_created} == {
        "RollupDay",
        "RollupDirtyDay",
    }


@pytest.mark.parametrize(
    "auto_field", ["django.db.models.BigAutoField", "django.db.models.SmallAutoField"]
)
def test_makemigrations__no_drift_in_a_project_with_another_auto_field(tmp_path, auto_field):
    """Models load afresh under the project's setting, which override_settings cannot do."""
    (tmp_path / "other_settings.py").write_text(
        textwrap.dedent(f"""
        from tests.settings import *  # noqa: F403
        DEFAULT_AUTO_FIELD = {auto_field!r}
        DATABASES = {{"default": {{
            "ENGINE": "django.db.backends.sqlite3", "NAME": {str(tmp_path / "db.sqlite3")!r},
        }}}}
    """)
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "other_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "makemigrations",
            "django_textclass",
            "--check",
            "--dry-run",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
