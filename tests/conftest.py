"""Fixtures shared by the whole suite.

The integration fixtures start real parts: the loopback Inference API emulator (a
real HTTP server on 127.0.0.1) and a real Celery worker process on the configured
broker and database. Nothing here skips: a missing service is an error.
"""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import caches

from django_textclass import dispatch
from django_textclass.testing.emulator import InferenceAPIEmulator
from tests import celery_app  # noqa: F401  (makes the test Celery app current)
from tests.integration.helpers import Worker


def pytest_collection_modifyitems(config, items):
    """Leave out the packaging tests unless ``-m`` names them (scripts/test's packaging run).

    They build the distributions and install them into new virtual environments: minutes,
    and PyPI or a pip cache, which a run of the suite on its own should not need.
    """
    if "packaging" in (config.option.markexpr or ""):
        return
    left_out = [item for item in items if item.get_closest_marker("packaging")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker("packaging")]


@pytest.fixture(scope="session")
def emulator_server():
    with InferenceAPIEmulator() as server:
        yield server


@pytest.fixture
def emulator(emulator_server):
    """The session's emulator, with its script, log and knobs reset for each test."""
    emulator_server.reset()
    emulator_server.latency = 0.0
    emulator_server.max_batch = None
    emulator_server.shape = "nested"
    emulator_server.tei = None
    yield emulator_server
    emulator_server.reset()
    emulator_server.tei = None


def _purge_broker():
    """Drop messages a previous run left in the broker (shared Redis/RabbitMQ)."""
    celery_app.app.control.purge()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, emulator_server):
    """One real worker for the session, talking to the emulator."""
    _purge_broker()
    worker = Worker(emulator_server.url, Path(settings.RUN_DIR) / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def worker(celery_worker_process, emulator, transactional_db):
    """A running worker and a database whose commits it can see."""
    return celery_worker_process


# --- users, and caches that outlive a transaction ------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _call_threads_closed(django_db_setup):
    """The worker's call threads keep their connections: close them before the test database
    is dropped (tests that run the worker in process, outside a transaction, start them).
    So does the waiting endpoints' listener until its last waiter leaves."""
    yield
    from django_textclass.services import waiting, worker

    worker.close_pools()
    waiting.stop_listening()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _wake_ups_left_behind_published():
    """Wake-ups a test left gathered go out before the next test (never into its recorder)."""
    yield
    dispatch.flush(timeout=30)


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """Throttle counters live in a file cache that outlives each test's transaction."""
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pw")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pw")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", password="staff-pw", is_staff=True)
