"""The Celery app of the example project (``celery -A example_project worker``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
# Every Celery setting lives in settings.py with a CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
# Finds django_textclass.tasks (django_textclass.run_batch, django_textclass.sweep).
app.autodiscover_tasks()
