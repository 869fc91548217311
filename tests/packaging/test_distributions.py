"""The wheel and the sdist as a release would build them: what they hold, their metadata, and
pytest in the unpacked sdist."""

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from tests.helpers import ROOT
from tests.packaging.helpers import run

pytestmark = pytest.mark.packaging

#: Files of the repository that the sdist leaves out on purpose.
NOT_IN_SDIST = {".gitignore", "example_project/.gitignore"}


def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(archive.read(name))


def test_build__no_setuptools_warning_about_packages_or_missing_files(dist):
    log = dist[2]

    assert "is absent from the `packages` configuration" not in log
    assert "no files found matching" not in log
    assert "no directories found matching" not in log


def test_wheel__the_package_and_its_templates_only(dist):
    with zipfile.ZipFile(dist[0]) as archive:
        names = archive.namelist()

    tops = {name.split("/")[0] for name in names}
    assert tops == {"django_textclass", "django_textclass-0.1.0.dist-info"}
    assert "django_textclass/templates/admin/django_textclass/dashboard.html" in names
    assert "django_textclass/templates/django_textclass/api/filters.html" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_wheel__metadata_has_project_urls_and_the_ecosystems_extras(dist):
    meta = metadata(dist[0])

    urls = dict(value.split(", ", 1) for value in meta.get_all("Project-URL"))
    assert set(urls) == {"Documentation", "Source", "Changelog", "Issues"}
    assert all(url.startswith("https://") for url in urls.values())
    requires = meta.get_all("Requires-Dist")
    assert 'celery[redis]; extra == "redis"' in requires
    assert any(
        r.startswith("psycopg[binary,pool]") and 'extra == "postgres"' in r for r in requires
    )
    assert any(r.startswith("django-filter") and "extra" not in r for r in requires)


def test_wheel__long_description_links_work_off_the_repository(dist):
    # The README is the package index page: every link and the screenshot must be absolute.
    description = metadata(dist[0]).get_payload()

    assert "](docs/" not in description
    assert "/raw/main/docs/img/dashboard.png)" in description


def git_files():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("the sdist is compared with `git ls-files`: run in a git checkout")
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {line for line in out.splitlines() if (ROOT / line).exists()}


def sdist_files(sdist):
    with tarfile.open(sdist) as archive:
        names = [member.name for member in archive.getmembers() if member.isfile()]
    return {name.split("/", 1)[1] for name in names}


def test_sdist__holds_every_file_of_the_repository(dist):
    files = sdist_files(dist[1])

    missing = git_files() - NOT_IN_SDIST - files
    assert not missing, sorted(missing)
    assert {
        "tests/settings.py",
        "tests/conftest.py",
        "docs/installation.md",
        "example_project/manage.py",
    } <= files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in files if name.startswith("example_project/var/")]


def test_sdist__pytest_runs_in_the_unpacked_sdist(dist, packaging_dir):
    folder = packaging_dir / "sdist"
    shutil.rmtree(folder, ignore_errors=True)
    with tarfile.open(dist[1]) as archive:
        archive.extractall(folder, filter="data")
    (unpacked,) = folder.iterdir()
    env = {
        "TEXTCLASS_TEST_RUN_DIR": str(folder / "run"),
        "TEXTCLASS_TEST_DB": "sqlite",
        "TEXTCLASS_TEST_BROKER": "filesystem",
    }
    os.makedirs(env["TEXTCLASS_TEST_RUN_DIR"])

    # The unpacked package is the one under test: pytest puts the sdist's root first.
    where = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "tests/packaging/probe.py",
        ],
        cwd=unpacked,
        env=env,
        check=False,
    )
    assert f"django_textclass from {unpacked}" in where.stdout, where.stdout[-2000:]
    result = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_types.py",
            "tests/test_checks.py",
            "tests/api/test_filters.py",
            "tests/test_docs.py",
        ],
        cwd=unpacked,
        env=env,
        timeout=600,
    )
    assert " passed" in result.stdout and "failed" not in result.stdout
