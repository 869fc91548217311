"""Fixtures shared by the whole suite.

The integration fixtures start real parts: the loopback Inference API emulator (a
real HTTP server on 127.0.0.1) and a real Celery worker process on the configured
broker and database. Nothing here skips: a missing service is an error.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from django_textclass.testing.emulator import InferenceAPIEmulator
from tests import celery_app  # noqa: F401  (makes the test Celery app current)

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout=20.0, interval=0.05, message="condition"):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


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
    yield emulator_server
    emulator_server.reset()


def _purge_broker():
    """Drop messages a previous run left in the broker (shared Redis/RabbitMQ)."""
    celery_app.app.control.purge()


class Worker:
    """A real ``celery worker`` subprocess on the test settings."""

    def __init__(self, api_url, log_path):
        self.api_url = api_url
        self.log_path = log_path
        self.process = None

    def start(self, timeout=60):
        env = {
            **os.environ,
            "TEXTCLASS_TEST_WORKER": "1",
            "TEXTCLASS_TEST_API_URL": self.api_url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(ROOT),
        }
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
             "--loglevel=INFO", "--concurrency=2", "--without-gossip", "--without-mingle",
             "--without-heartbeat", f"--hostname=textclass-test-{os.getpid()}@%h"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches the pool too
        )
        wait_for(self._ready, timeout=timeout, message="the Celery worker to be ready")

    def _ready(self):
        if self.process.poll() is not None:
            pytest.fail(f"the Celery worker exited with {self.process.returncode}:\n{self.tail()}")
        return b" ready." in Path(self.log_path).read_bytes()

    def tail(self, lines=40):
        return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])

    def kill(self):
        """SIGKILL the worker and its pool processes, as a crash or the OOM killer would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.log.close()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if not self.log.closed:
            self.log.close()


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
