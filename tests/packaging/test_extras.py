"""Each extra, alone, in a new virtual environment with the built wheel: a new project's
Celery worker starts and classifies a text (the `redis` extra once gave a worker that died
on `ModuleNotFoundError: packaging`)."""

import json
import os

import pytest

from tests.packaging.helpers import Project, run

pytestmark = pytest.mark.packaging

RUN_ID = os.environ.get("TEXTCLASS_TEST_RUN_ID", "local")
REDIS_URL = os.environ.get("TEXTCLASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

CELERY_PY = """\
import os

from celery import Celery

import django_textclass.brokers.filesystem  # noqa: F401  (textclass-filesystem://)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
app = Celery("proj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
"""

#: Classifies one text, waits for the worker (60 s at most) and prints the row as JSON.
CLASSIFY = """\
import json, time
import django_textclass
row = django_textclass.classify("I love this, it is wonderful", model="acme/sentiment")
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    row.refresh_from_db()
    if row.is_finished:
        break
    time.sleep(0.2)
print(json.dumps({"status": row.status, "top_label": row.top_label, "error": row.error_code}))
"""


def filesystem_broker(folder):
    queue = folder / "broker"
    queue.mkdir(parents=True)
    return f"""
CELERY_BROKER_URL = "textclass-filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS = {{"data_folder_in": {str(queue)!r},
    "data_folder_out": {str(queue)!r}, "control_folder": {str(folder / "control")!r},
    "polling_interval": 0.1}}
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
"""


def hugging_face(url):
    return f"""
TEXTCLASS = {{"BACKENDS": {{"default": {{
    "BACKEND": "django_textclass.backends.huggingface.Backend",
    "OPTIONS": {{"API_URL": {url + "/models/{model_id}"!r}, "TOKEN": "hf_test_not_secret"}},
}}}}}}
"""


OFFLINE = """
TEXTCLASS = {"BACKENDS": {"default": {"BACKEND": "django_textclass.backends.offline.Backend"}}}
"""


@pytest.fixture
def postgres_database():
    import psycopg

    name = f"textclass_pkg_{RUN_ID}".lower()
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_worker(project, queue):
    return project.start(
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
            "-Q",
            queue,
            f"--hostname={queue}@%h",
        ],
        ready=" ready.",
    )


def classify_with_a_worker(project, extra):
    queue = f"textclass-pkg-{RUN_ID}-{extra}"
    project.append("settings.py", f"CELERY_TASK_DEFAULT_QUEUE = {queue!r}")
    project.manage("migrate", "-v", "0")
    assert "no issues" in project.manage("check").stdout
    worker = start_worker(project, queue)
    try:
        row = json.loads(project.shell(CLASSIFY).strip().splitlines()[-1])
    finally:
        worker.stop()
    assert "Traceback" not in worker.text(), worker.text()[-4000:]
    return row


def new_project(venv, folder, settings):
    project = Project(venv, folder)
    project.write("celery.py", CELERY_PY)
    project.write(
        "__init__.py", 'from .celery import app as celery_app\n\n__all__ = ("celery_app",)'
    )
    project.append("settings.py", 'INSTALLED_APPS += ["django_textclass"]\n' + settings)
    return project


def test_extra_offline__worker_classifies_without_network(venv_with, tmp_path):
    venv = venv_with("offline")
    assert "vadersentiment" in venv.installed()
    project = new_project(venv, tmp_path / "p", OFFLINE + filesystem_broker(tmp_path))

    row = classify_with_a_worker(project, "offline")

    assert row == {"status": "succeeded", "top_label": "POSITIVE", "error": ""}


def test_extra_redis__worker_starts_on_redis(venv_with, tmp_path, emulator):
    venv = venv_with("redis")
    assert {"redis", "packaging"} <= venv.installed()
    run([venv.python, "-m", "pip", "check"])
    project = new_project(
        venv, tmp_path / "p", hugging_face(emulator.url) + f"\nCELERY_BROKER_URL = {REDIS_URL!r}\n"
    )

    row = classify_with_a_worker(project, "redis")

    assert row["status"] == "succeeded", row
    assert "redis" in project.folder.joinpath("worker.log").read_text()


def test_extra_postgres__worker_starts_on_postgresql(
    venv_with, tmp_path, emulator, postgres_database
):
    venv = venv_with("postgres")
    assert {"psycopg", "psycopg-binary", "psycopg-pool"} <= venv.installed()
    database = (
        f'\nDATABASES = {{"default": {{"ENGINE": "django.db.backends.postgresql", '
        f'"NAME": {postgres_database!r}, "USER": "postgres", "HOST": "127.0.0.1", '
        f'"PORT": 5432}}}}\n'
    )
    project = new_project(
        venv, tmp_path / "p", hugging_face(emulator.url) + database + filesystem_broker(tmp_path)
    )

    row = classify_with_a_worker(project, "postgres")

    assert row["status"] == "succeeded", row


def test_extra_openapi_ui__swagger_ui_served_from_the_site(venv_with, tmp_path, emulator):
    venv = venv_with("openapi-ui")
    assert "drf-spectacular-sidecar" in venv.installed()
    project = new_project(
        venv,
        tmp_path / "p",
        hugging_face(emulator.url)
        + filesystem_broker(tmp_path)
        + """
INSTALLED_APPS += ["rest_framework", "rest_framework.authtoken", "drf_spectacular",
                   "drf_spectacular_sidecar"]
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
                  "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]}
SPECTACULAR_SETTINGS = {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR"}
""",
    )
    project.write(
        "urls.py",
        """\
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

urlpatterns = [
    path("api/", include("django_textclass.api.urls")),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="textclass_api:schema")),
]""",
    )

    row = classify_with_a_worker(project, "openapi-ui")
    page = project.shell(
        "from django.test import Client; r = Client(HTTP_HOST='localhost').get('/api/docs/'); "
        "print('status', r.status_code, r.content.decode())"
    )

    assert row["status"] == "succeeded", row
    assert "status 200 " in page, page[-2000:]
    assert "drf_spectacular_sidecar/swagger-ui-dist" in page  # served locally, no CDN
