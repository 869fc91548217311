"""Fixtures of the packaging tests: one build and one virtual environment per set of extras
for the whole run (each costs a pip install; pip's cache makes the next run quicker)."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from tests.packaging.helpers import Venv, build


@pytest.fixture(scope="session")
def packaging_dir():
    """The run's folder for builds, virtual environments and projects; removed at the end
    (a few hundred MB of virtual environments)."""
    folder = Path(settings.RUN_DIR) / "packaging"
    folder.mkdir(exist_ok=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def dist(packaging_dir):
    """``(wheel, sdist, build log)`` of the checkout, built as a release would be."""
    outdir = packaging_dir / "dist"
    log = build(outdir)
    (wheel,) = outdir.glob("*.whl")
    (sdist,) = outdir.glob("*.tar.gz")
    return wheel, sdist, log


@pytest.fixture(scope="session")
def venv_with(dist, packaging_dir):
    """``venv_with("redis")``: a new virtual environment with the wheel and those extras."""
    made = {}

    def make(*extras):
        if extras not in made:
            made[extras] = Venv(
                packaging_dir / ("venv-" + ("-".join(extras) or "bare")), dist[0], extras
            )
        return made[extras]

    return make
