"""Throughput of the pipeline: a real Celery worker against the loopback emulator.

    python benchmarks/pipeline.py            # 2,000 texts per scenario
    python benchmarks/pipeline.py --quick    # 200 texts: a smoke run for CI

Each scenario stores N texts with ``classify()`` in one call, then waits until a
real worker process (``celery worker``, prefork, concurrency 2) has finished them
all, against the emulator answering after a fixed latency. It prints the time to
store, the time until the last request finished, requests per second, and how
many API calls the emulator received. The database and broker are those of the
test settings: SQLite and the filesystem broker by default;
``TEXTCLASS_TEST_DB=postgres TEXTCLASS_TEST_BROKER=redis`` for the real ones.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIOS = [
    # name, max texts per API call, share of duplicate texts
    ("one text per call", 1, 0.0),
    ("batches of 32", 32, 0.0),
    ("batches of 32, half duplicates", 32, 0.5),
]


def main(argv=None):
    """Run every scenario and print one line of figures for each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency, seconds")
    parser.add_argument("--quick", action="store_true", help="200 texts, for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.texts = 200
    os.environ.setdefault("TEXTCLASS_TEST_RUN_DIR", tempfile.mkdtemp(prefix="textclass-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from django_textclass.testing.emulator import InferenceAPIEmulator

    db_config = setup_databases(verbosity=0, interactive=False)
    broker = os.environ.get("TEXTCLASS_TEST_BROKER", "filesystem")
    print(f"database: {connection.vendor}, broker: {broker}, {args.texts} texts per scenario, "
          f"emulator latency {args.latency * 1000:.0f} ms")
    try:
        with InferenceAPIEmulator(latency=args.latency) as emulator:
            for name, batch, duplicates in SCENARIOS:
                run_scenario(name, batch, duplicates, args.texts, emulator)
    finally:
        teardown_databases(db_config, verbosity=0)
    print(f"reproduce: python benchmarks/pipeline.py{' --quick' if args.quick else ''}")
    return 0


def run_scenario(name, batch, duplicates, count, emulator):
    """Store ``count`` texts, wait for a fresh worker to finish them, print the figures."""
    import django_textclass
    from django_textclass.models import ClassificationRequest, Status
    from tests import celery_app

    celery_app.app.control.purge()
    ClassificationRequest.objects.all().delete()
    emulator.reset()
    worker = start_worker(emulator.url, batch)
    try:
        unique = int(count * (1 - duplicates))
        texts = [f"text number {i % unique} is good" for i in range(count)]
        started = time.perf_counter()
        requests = django_textclass.classify(texts)
        stored = time.perf_counter() - started
        pks = [request.pk for request in requests]
        deadline = time.monotonic() + 600
        while ClassificationRequest.objects.filter(pk__in=pks).exclude(
            status__in=[Status.SUCCEEDED, Status.FAILED]
        ).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: not finished within 600 s")
            time.sleep(0.05)
        total = time.perf_counter() - started
        failed = ClassificationRequest.objects.filter(pk__in=pks, status=Status.FAILED).count()
    finally:
        worker.terminate()
        worker.wait(30)
    calls = len(emulator.requests)
    print(f"{name:34s} store {stored * 1000:7.0f} ms | all done {total:6.2f} s | "
          f"{count / total:7.1f} req/s | {calls:5d} API calls | {failed} failed")
    if failed:
        raise SystemExit(f"{name}: {failed} requests failed")


def start_worker(api_url, batch):
    """A real worker process whose backend sends at most ``batch`` texts per call."""
    env = {
        **os.environ, "TEXTCLASS_TEST_WORKER": "1", "TEXTCLASS_TEST_API_URL": api_url,
        "TEXTCLASS_TEST_MAX_BATCH": str(batch), "PYTHONPATH": str(ROOT),
    }
    log = Path(os.environ["TEXTCLASS_TEST_RUN_DIR"]) / "bench-worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "--loglevel=WARNING",
         "--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    time.sleep(3)  # the worker connects; messages sent before that wait in the queue anyway
    return process


if __name__ == "__main__":
    sys.exit(main())
