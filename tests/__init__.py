# As a project's proj/__init__.py: the suite's Celery app exists whenever Django starts. (Not
# named celery_app here: that is the submodule tests.celery_app, which scripts import.)
from tests.celery import app as suite_celery_app  # noqa: F401
