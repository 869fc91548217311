"""The Celery app of the test suite, with Django set up; the integration tests start a real
worker on it (``celery -A tests.celery_app worker``) and scripts import it to use the ORM."""

import os

import django

from tests.celery import app  # noqa: F401  (`celery -A tests.celery_app` finds it here)

django.setup()


def _count_queries(directory):
    """Count every SQL statement of this process, in every thread, into ``directory/<pid>``.

    The file is rewritten after each task with the process's total so far, so a benchmark
    reads the statements its workload cost without instrumenting the code under test. The
    statements of the test app's own signal receivers (``testapp_*`` tables) are left out:
    they are a site's cost, not ours.
    """
    import itertools
    import threading

    from celery.signals import task_postrun
    from django.db.backends.signals import connection_created

    counter = itertools.count(1)
    lock = threading.Lock()
    total = [0]

    def count(execute, sql, params, many, context):
        if "testapp_" not in sql:
            with lock:
                total[0] = next(counter)
        return execute(sql, params, many, context)

    def wrap(sender, connection, **kwargs):
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    def write(**kwargs):
        (directory / str(os.getpid())).write_text(f"{total[0]}\n")

    connection_created.connect(wrap, weak=False)
    task_postrun.connect(write, weak=False)


if os.environ.get("TEXTCLASS_TEST_COUNT_QUERIES"):
    from pathlib import Path

    _count_queries(Path(os.environ["TEXTCLASS_TEST_COUNT_QUERIES"]))
