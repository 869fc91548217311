"""A new user's first hour: the built wheel in a new virtual environment, a new
``django-admin startproject``, and docs/installation.md's steps exactly as written (its blocks
headed ``# proj/...``). Then migrate, check (nothing to report), a worker, a classification
with the offline backend, the REST API and the admin, as the user would reach them."""

import os
import re

import pytest
import requests

from tests.helpers import ROOT
from tests.packaging.helpers import Project, doc_blocks, free_port

pytestmark = pytest.mark.packaging

INSTALLATION = ROOT / "docs" / "installation.md"
DOC_BROKER = "redis://127.0.0.1:6379/0"
REDIS_URL = os.environ.get("TEXTCLASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RUN_ID = os.environ.get("TEXTCLASS_TEST_RUN_ID", "local")
NO_ISSUES = "System check identified no issues (0 silenced)."
TEXT = "I love this, it is wonderful"


def block(header):
    (found,) = doc_blocks(INSTALLATION, header)
    return found


def textclass_ids(output):
    return set(re.findall(r"textclass\.[EW]\d{3}", output))


@pytest.fixture
def project(venv_with, tmp_path):
    """The project of installation.md's steps, before migrate."""
    venv = venv_with("redis", "offline")
    project = Project(venv, tmp_path / "site")
    settings_blocks = doc_blocks(INSTALLATION, "# proj/settings.py")
    assert len(settings_blocks) == 2  # the apps and the API's defaults, then Celery's
    for text in settings_blocks:
        # The run's own Redis database and queue instead of the doc's database 0.
        assert DOC_BROKER in text or "INSTALLED_APPS" in text
        project.append("settings.py", text.replace(DOC_BROKER, REDIS_URL))
    project.append("settings.py", f'CELERY_TASK_DEFAULT_QUEUE = "textclass-first-hour-{RUN_ID}"')
    project.write("celery.py", block("# proj/celery.py"))
    return project


def test_first_hour__installation_md_as_written(project):
    # A step left out: without the import in proj/__init__.py the check says so.
    assert "textclass.W007" in project.manage("check").stderr

    project.write("__init__.py", block("# proj/__init__.py"))
    project.write("urls.py", block("# proj/urls.py"))
    project.manage("migrate", "-v", "0")

    # Every app's tables, the admin's and the sessions' too.
    unapplied = [
        line for line in project.manage("showmigrations").stdout.splitlines() if "[ ]" in line
    ]
    assert unapplied == []
    check = project.manage("check")
    assert (check.stdout.strip(), check.stderr.strip()) == (NO_ISSUES, "")
    # On deploy: the throttle cache of startproject's default CACHES, which installation.md
    # explains (and Django's own security warnings, which are not ours).
    deploy = project.manage("check", "--deploy", check=False)
    assert textclass_ids(deploy.stdout + deploy.stderr) == {"textclass.W010"}
    assert "`textclass.W010` | `check --deploy`" in INSTALLATION.read_text()

    env = {"DJANGO_SUPERUSER_PASSWORD": "first-hour-password"}
    project.env.update(env)
    project.manage(
        "createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com"
    )
    token = project.manage("drf_create_token", "admin").stdout.split()[2]

    port = free_port()
    worker = project.start(
        "worker",
        [
            project.venv.bin("celery"),
            "-A",
            "proj",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=first-hour-{RUN_ID}@%h",
        ],
        ready=" ready.",
    )
    server = project.start(
        "web",
        [project.venv.python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        ready="Quit the server with",
    )
    try:
        walk(project, f"http://127.0.0.1:{port}", token)
    finally:
        server.stop()
        worker.stop()
    for process in (worker, server):
        assert "Traceback" not in process.text(), process.text()[-4000:]


def walk(project, site, token):
    # classify() from Python, as the README shows.
    out = project.shell(
        "import time, django_textclass\n"
        f"row = django_textclass.classify({TEXT!r})\n"
        "deadline = time.monotonic() + 60\n"
        "while not row.is_finished and time.monotonic() < deadline:\n"
        "    time.sleep(0.2); row.refresh_from_db()\n"
        "print('row', row.status, row.top_label)\n"
    )
    assert "row succeeded POSITIVE" in out, out

    api = requests.Session()
    api.headers["Authorization"] = f"Token {token}"
    root = api.get(f"{site}/api/", timeout=30)
    assert root.status_code == 200
    assert set(root.json()) == {"classifications", "stats", "schema"}

    submitted = api.post(
        f"{site}/api/classifications/", json={"text": TEXT, "wait": 30}, timeout=60
    )
    assert submitted.status_code == 200, submitted.text
    assert (submitted.json()["status"], submitted.json()["top_label"]) == ("succeeded", "POSITIVE")

    history = api.get(f"{site}/api/classifications/", params={"status": "succeeded"}, timeout=30)
    assert history.status_code == 200
    assert len(history.json()["results"]) == 2
    assert (
        api.get(f"{site}/api/classifications/", params={"status": "done"}, timeout=30).status_code
        == 400
    )
    assert api.get(f"{site}/api/schema/", timeout=30).status_code == 200
    browsable = api.get(f"{site}/api/classifications/", headers={"Accept": "text/html"}, timeout=30)
    assert browsable.status_code == 200 and "Filters" in browsable.text
    assert requests.get(f"{site}/api/classifications/", timeout=30).status_code in (401, 403)

    # The admin, logged in as a person would.
    browser = requests.Session()
    login = browser.get(f"{site}/admin/login/", timeout=30)
    assert login.status_code == 200
    answer = browser.post(
        f"{site}/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": "first-hour-password",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": f"{site}/admin/login/"},
        timeout=30,
    )
    assert answer.status_code == 200 and "Log out" in answer.text
    changelist = browser.get(f"{site}/admin/django_textclass/classificationrequest/", timeout=60)
    assert changelist.status_code == 200
    assert TEXT[:20] in changelist.text
