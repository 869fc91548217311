"""What the integration tests share: a real worker process, waiting for requests to finish."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.utils import timezone

from django_textclass.models import ClassificationRequest, RequestEvent
from django_textclass.models.status import TERMINAL_STATUSES
from tests.helpers import ROOT, wait_for

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"


def finished(*requests, timeout=30):
    """Wait until every request is in a terminal state; return them fresh from the DB."""
    pks = [request.pk for request in requests]

    def all_done():
        rows = list(ClassificationRequest.objects.filter(pk__in=pks).order_by("pk"))
        return rows if all(row.is_finished for row in rows) else None

    def unfinished():
        rows = ClassificationRequest.objects.filter(pk__in=pks).exclude(
            status__in=TERMINAL_STATUSES
        )
        lines = [
            f"{row.pk}: {row.status} attempts={row.attempts} "
            f"next_attempt_at={row.next_attempt_at} lease={row.lease_expires_at} "
            f"token={row.claim_token} error={row.error_code}"
            for row in rows[:20]
        ]
        events = RequestEvent.objects.filter(request__in=rows[:1]).order_by("pk")
        lines += [
            f"  event {event.kind} {event.reason} wait={event.wait_seconds} at {event.at}"
            for event in events
        ]
        return f"{rows.count()} not final, at {timezone.now()}:\n" + "\n".join(lines)

    return wait_for(
        all_done, timeout=timeout, message=f"{len(pks)} requests to finish", describe=unfinished
    )


class Worker:
    """A real ``celery worker`` subprocess on the test settings."""

    def __init__(self, api_url, log_path, name="worker", env=None, loglevel="INFO"):
        self.api_url = api_url
        self.loglevel = loglevel
        self.extra_env = env or {}
        self.log_path = log_path
        self.name = name  # node names must differ between workers that run at once
        self.process = None

    def start(self, timeout=60):
        env = {
            **os.environ,
            "TEXTCLASS_TEST_WORKER": "1",
            "TEXTCLASS_TEST_API_URL": self.api_url,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # A restart appends to the same log: only what this start writes says it is ready.
        self._log_start = self.log.tell()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.celery_app",
                "worker",
                f"--loglevel={self.loglevel}",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname=textclass-test-{os.getpid()}-{self.name}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() reaches the pool too
        )
        wait_for(self._ready, timeout=timeout, message="the Celery worker to be ready")

    def _ready(self):
        if self.process.poll() is not None:
            pytest.fail(f"the Celery worker exited with {self.process.returncode}:\n{self.tail()}")
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return b" ready." in log.read()

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def tail(self, lines=40):
        return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])

    def kill(self):
        """SIGKILL the worker and its pool processes, as a crash or the OOM killer would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.log.close()

    def terminate(self, timeout=60):
        """SIGTERM the main process, as a deploy does: a warm shutdown.

        Celery stops taking messages and waits for the tasks under way to finish.

        Returns:
            The seconds it took to exit.
        """
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit within {timeout} s of SIGTERM:\n{self.tail()}")
        self.log.close()
        return time.monotonic() - started

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
