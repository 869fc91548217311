"""The rig of one fault scenario: its emulator, queue, processes and workload.

Every scenario gets its own loopback emulator (on a fixed port, so that it can be stopped
and started again), its own Celery queue, and workers, beat and brokers that the rig stops
at the end whatever the test did to them. Workers hold short leases (6 s) so that recovery
from a dead worker is measured in real time, not by moving clocks.
"""

import itertools
import os
import threading
import time
from collections import Counter
from datetime import timedelta

from django.conf import settings as django_settings
from django.db.models import Count
from django.utils import timezone

import django_textclass
from django_textclass.models import ClassificationRequest, Notification
from django_textclass.models.status import TERMINAL_STATUSES
from django_textclass.services import dispatch, outcomes
from django_textclass.testing import InferenceAPIEmulator
from tests.faults.processes import Beat, RabbitServer, RedisServer, WebServer
from tests.helpers import ROOT, free_port, wait_for
from tests.integration.helpers import MODEL, Worker
from tests.testapp.models import Comment

#: The lease of the rig's workers: a dead worker's rows are back in work this long after
#: its last renewal (plus a sweep).
LEASE_SECONDS = 6

_queues = itertools.count(1)


class Rig:
    """The processes, emulator and queue of one scenario."""

    def __init__(self, tmp_path, settings, monkeypatch):
        self.dir = tmp_path
        self.monkeypatch = monkeypatch
        self.queue = f"textclass-faults-{django_settings.RUN_ID}-{next(_queues)}"
        # This process publishes to the scenario's queue too (the sweep, duplicates).
        settings.TEXTCLASS = {**settings.TEXTCLASS, "QUEUE": self.queue}
        self.emulator = InferenceAPIEmulator(port=free_port()).start()
        self.broker_url = None  # the suite's broker; a scenario may bring its own
        self._processes = []
        self.workers = []
        self.supervisor = None

    # --- the parts ------------------------------------------------------------------

    def env(self, **extra):
        """The environment of a process of this scenario (worker, beat, web server)."""
        env = {
            **os.environ,
            "TEXTCLASS_TEST_WORKER": "1",
            "TEXTCLASS_TEST_API_URL": self.emulator.url,
            "TEXTCLASS_TEST_QUEUE": self.queue,
            "TEXTCLASS_TEST_LEASE_SECONDS": str(LEASE_SECONDS),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONPATH": str(ROOT),
        }
        if self.broker_url:
            env["TEXTCLASS_TEST_BROKER_URL"] = self.broker_url
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def worker(self, name="worker", supervised=False, **env):
        """A ``celery worker`` of this scenario, started (node names must differ).

        A ``supervised`` worker that exits is started again, as systemd's ``Restart=`` or a
        container's restart policy would: a site runs its workers that way, and a worker may
        exit on a broker fault (kombu's "Unrecoverable error" on a lost Redis connection).
        """
        worker = Worker(self.emulator.url, self.dir / f"{name}.log", name=name, env=self.env(**env))
        self.workers.append(worker)
        worker.start(timeout=90)
        if supervised:
            if self.supervisor is None:
                self.supervisor = Supervisor()
            self.supervisor.watch(worker)
        return worker

    def beat(self, interval=0.5):
        """``celery beat`` sending the sweep every ``interval`` seconds.

        On a Redis of the scenario's own it has socket timeouts (what check W006 asks for),
        so that a frozen broker does not hang it. The workers have none: with them, a worker
        whose acknowledgement timed out on a frozen Redis sometimes never consumed again
        (kombu logs "Couldn't ack ... TimeoutError" and goes quiet; docs/reliability.md).
        """
        timeouts = {}
        if self.broker_url and self.broker_url.startswith("redis"):
            timeouts["TEXTCLASS_TEST_BROKER_SOCKET_TIMEOUT"] = "2"
        return self._started(Beat(self.dir / "beat.log", self.env(**timeouts), interval).start())

    def redis(self):
        """A redis-server of the scenario's own, made the broker of everything started next."""
        server = self._started(RedisServer(self.dir).start())
        self.use_broker(server.url)
        return server

    def rabbitmq(self):
        """A RabbitMQ node of the scenario's own, made the broker of everything started next."""
        server = self._started(RabbitServer(self.dir).start())
        self.use_broker(server.url)
        return server

    def use_broker(self, url):
        """Publish from this process to ``url``, as the processes started from now on will."""
        self.broker_url = url
        self.monkeypatch.setenv("CELERY_BROKER_WRITE_URL", url)
        dispatch.drop_connections()  # the next publish opens a connection to it

    def web_server(self):
        env = self.env(TEXTCLASS_TEST_NO_THROTTLE=1)
        return self._started(WebServer(self.dir / "web.log", env).start())

    def _started(self, process):
        self._processes.append(process)
        return process

    # --- the workload ----------------------------------------------------------------

    def submit(self, texts, chunk=500):
        """``classify()`` the texts in chunks, as a site's code would; returns their pks."""
        pks = []
        for start in range(0, len(texts), chunk):
            pks += [
                row.pk
                for row in django_textclass.classify(texts[start : start + chunk], model=MODEL)
            ]
        return pks

    def comments(self, negative=10, positive=10):
        """Registered content: each comment's body is classified with two models, and the
        negative ones reach both of the test app's threshold rules. Returns the pks of the
        requests they made."""
        for n in range(negative):
            Comment.objects.create(body=f"comment {n}: I hate this, an awful broken thing")
        for n in range(positive):
            Comment.objects.create(body=f"comment {n}: I love this, a great lovely thing")
        dispatch.flush(timeout=30)
        return list(
            ClassificationRequest.objects.exclude(content_type=None).values_list("pk", flat=True)
        )

    # --- watching ----------------------------------------------------------------------

    def counts(self):
        """``{status: n}`` over the whole table (each scenario starts with it empty)."""
        rows = ClassificationRequest.objects.values_list("status").order_by()
        return dict(rows.annotate(n=Count("pk")))

    def final(self):
        """How many requests are final."""
        return ClassificationRequest.objects.filter(status__in=TERMINAL_STATUSES).count()

    def wait_all_final(self, expected, timeout=180, message="every request to be final"):
        """Poll until ``expected`` requests are stored and every one is final.

        Returns:
            ``time.monotonic()`` when that was first seen.
        """

        def done():
            counts = self.counts()
            total = sum(counts.values())
            settled = sum(counts.get(status, 0) for status in TERMINAL_STATUSES)
            return total >= expected and settled == total

        wait_for(done, timeout=timeout, interval=0.25, message=message, describe=self.describe)
        return time.monotonic()

    def wait_signals_sent(self, *, written_after=None, timeout=60):
        """Poll until the live processes have sent the signals of their results.

        A result's signals go after its commit: a request is final a moment before its
        signals are sent. ``written_after`` (a datetime) leaves out what a killed process
        owed before then: the sweep sends that after ``DELIVERY_SECONDS``
        (:func:`deliver_owed_signals`).
        """
        owed = Notification.objects.all()
        if written_after is not None:
            owed = owed.filter(created_at__gte=written_after)
        wait_for(
            lambda: not owed.exists(),
            timeout=timeout,
            interval=0.25,
            message="the live processes to send the signals they owe",
            describe=lambda: f"{owed.count()} owed; {self.describe()}",
        )

    def wait_outbox_settled(self, timeout=30):
        """Poll until the outbox stops shrinking: what is left, no live process will send
        before ``DELIVERY_SECONDS`` (a delivery a killed connection broke)."""
        seen = []

        def settled():
            seen.append(Notification.objects.count())
            return seen[-1] == 0 or (len(seen) >= 5 and len(set(seen[-5:])) == 1)

        wait_for(settled, timeout=timeout, interval=0.25, message="the outbox to settle")
        return seen[-1]

    def wait_rows(self, pks, timeout=180, message="the named requests to be final"):
        """Poll until every request in ``pks`` is final; returns ``time.monotonic()`` then."""
        pks = list(pks)

        def done():
            return (
                not ClassificationRequest.objects.filter(pk__in=pks)
                .exclude(status__in=TERMINAL_STATUSES)
                .exists()
            )

        wait_for(done, timeout=timeout, interval=0.25, message=message, describe=self.describe)
        return time.monotonic()

    def describe(self):
        """The state for a failure message: counts, a few unfinished rows, the logs' tails."""
        lines = [f"counts: {self.counts()}"]
        unfinished = ClassificationRequest.objects.exclude(status__in=TERMINAL_STATUSES)
        for row in unfinished[:8]:
            lines.append(
                f"  {row.pk} {row.status} attempts={row.attempts} "
                f"due={row.next_attempt_at} lease={row.lease_expires_at} "
                f"error={row.error_code}"
            )
        if self.supervisor is not None and self.supervisor.restarts:
            lines.append(f"workers started again by the supervisor: {self.supervisor.restarts}")
        for worker in self.workers:
            if worker.process is not None:
                lines.append(f"--- {worker.name} ({'running' if worker.running else 'exited'})")
                lines.append(worker.tail(15))
        return "\n".join(lines)

    def unique_texts(self):
        """Distinct (model, parameters, text) among the rows that go to the API."""
        return (
            ClassificationRequest.objects.filter(chunks__isnull=True)
            .values("model_id", "function_to_apply", "top_k", "text_hash")
            .distinct()
            .count()
        )

    def close(self):
        if self.supervisor is not None:
            self.supervisor.stop()
        for worker in self.workers:
            worker.stop()
        for process in reversed(self._processes):
            process.stop()
        dispatch.flush(timeout=30)
        dispatch.drop_connections()
        self.emulator.stop()


class Supervisor(threading.Thread):
    """Starts a watched worker again when it exits; ``restarts`` lists (name, exit code)."""

    def __init__(self):
        super().__init__(name="fault-rig-supervisor", daemon=True)
        self.restarts = []
        self._watched = []
        self._stopped = threading.Event()
        self.start()

    def watch(self, worker):
        self._watched.append(worker)

    def run(self):
        while not self._stopped.wait(0.2):
            for worker in list(self._watched):
                code = worker.process.poll()
                if code is None or self._stopped.is_set():
                    continue
                worker.log.close()
                self.restarts.append((worker.name, code))
                try:
                    worker.start(timeout=90)
                except BaseException:  # noqa: BLE001 - pytest.fail() in a thread: try again
                    continue

    def stop(self):
        self._stopped.set()
        self.join(timeout=100)


def texts(n, unique, tag="text"):
    """``n`` texts of which ``unique`` differ (repeats spread evenly), with varied sentiment."""
    moods = [
        "I love it, great",
        "it was awful and broken",
        "plain words here",
        "not good at all",
        "a lovely, happy day",
        "boring and slow",
        "nice enough",
    ]
    return [f"{tag} {j}: {moods[j % len(moods)]}" for j in (i % unique for i in range(n))]


def classified_twice(emulator):
    """``{(model, text): times}`` of the texts the API answered (200) more than once.

    Calls refused with a 429, a 503 or a 500 classified nothing; a text they held is sent
    again by design. A text answered twice was paid for twice.
    """
    seen = Counter(
        (call.model_id, text)
        for call in emulator.requests
        if call.model_id is not None and call.status == 200
        for text in call.inputs
    )
    return {key: n for key, n in seen.items() if n > 1}


def deliver_owed_signals():
    """What the sweep does once ``DELIVERY_SECONDS`` have passed: send the signals a killed
    process owed for results it had committed. Returns how many it sent.

    Called by scenarios that kill processes, instead of waiting two minutes of real time.
    """
    later = timezone.now() + timedelta(seconds=outcomes.DELIVERY_SECONDS + 1)
    return outcomes.deliver_overdue(now=later)


def explain_classified_twice(emulator, twice):
    """For a failure message: the rows and the calls of each text the API answered twice."""
    lines = []
    for model_id, text in list(twice)[:5]:
        lines.append(f"{text!r} ({model_id}):")
        calls = [
            call
            for call in emulator.requests
            if call.model_id == model_id and text in call.inputs and call.status == 200
        ]
        lines += [
            f"  call at {call.received_at:.3f} with {len(call.inputs)} texts, "
            f"answered {call.status}"
            for call in calls
        ]
        for row in ClassificationRequest.objects.filter(model_id=model_id, text=text):
            lines.append(
                f"  row {row.pk}: {row.status} attempts={row.attempts} "
                f"started={row.started_at:%H:%M:%S.%f} "
                f"finished={row.finished_at:%H:%M:%S.%f} "
                f"reused_from={row.reused_from_id} backend_ms={row.backend_ms}"
            )
            lines += [
                f"    {event.at:%H:%M:%S.%f} {event.kind} {event.reason} "
                f"attempts={event.attempts} wait={event.wait_seconds}"
                for event in row.events.order_by("pk")
            ]
    return "\n".join(lines)


def assert_classified_once(emulator, *, except_for=()):
    """Fail unless the API answered each text once; ``except_for``: ``(model, text)`` keys
    that may have been answered again (a killed worker's calls)."""
    twice = {key: n for key, n in classified_twice(emulator).items() if key not in except_for}
    assert not twice, (
        f"{len(twice)} text(s) classified more than once:\n"
        + explain_classified_twice(emulator, twice)
    )
