"""The suite's Celery app, created as a project's ``proj/celery.py`` creates its own.

``tests/__init__.py`` imports it, as a project's ``proj/__init__.py`` does, so every process
that loads ``tests.settings`` (the test run, a management command in a subprocess, a worker)
has it as its current app (check ``textclass.W007``).
"""

import os

from celery import Celery

# Registers the textclass-filesystem:// broker URL (the suite's default broker) before
# anything builds a connection.
import django_textclass.brokers.filesystem  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_textclass"])
