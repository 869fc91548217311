"""The Celery app of the example project (``celery -A example_project worker``)."""

import os

from celery import Celery

# Registers the textclass-filesystem:// broker URL, the demo's default. Here because every
# process imports this module before it builds a broker connection: `celery -A
# example_project worker` and `beat` first of all, Django through the package's __init__.py.
import django_textclass.brokers.filesystem  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
# Every Celery setting lives in settings.py with a CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
# Finds django_textclass.tasks (django_textclass.run_batch, django_textclass.sweep).
app.autodiscover_tasks()
