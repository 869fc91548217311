"""Throughput of the pipeline, side by side with the API's own limit and the per-text client.

    TEXTCLASS_TEST_DB=postgres TEXTCLASS_TEST_BROKER=redis python benchmarks/pipeline.py
    python benchmarks/pipeline.py --quick                     # 2,000 texts: CI's smoke run
    python benchmarks/pipeline.py --sizes 2000,20000,100000   # the scaling table
    python benchmarks/pipeline.py --quick --only rest         # the REST endpoints alone
    python benchmarks/pipeline.py --only pipeline --in-flight 8   # the pipeline alone

Everything is real and on this machine: the loopback emulator of the Inference API (a fixed
latency per call plus a small cost per text), the database and broker of the test settings
(SQLite and the filesystem broker unless the variables above say otherwise), and
``celery worker`` processes (prefork, 2 processes). For 2 and for 8 calls in flight it
measures, in the same run:

* **the limit**: threads posting batches of distinct texts straight to the emulator, as
  fast as it answers; the unique texts per second no client can beat at that concurrency;
* **the per-text client**: ``huggingface_hub.InferenceClient.text_classification`` over a
  thread pool of that size, one call per text;
* **this app**: the workload stored with ``classify()`` (500 texts per call and transaction,
  as ``textclass_backfill`` imports by default) by a worker that has served work before, timed
  until the last row was final; API calls against the minimum (one per 32 unique texts), SQL
  statements per text (counted inside the worker processes), submit-to-result latency, peak
  RSS of a worker process;
* **the REST endpoints** served by ``runserver`` with a worker behind: batch submit, single
  submit with 8 clients;
* **the drop-in endpoint** served by ``uvicorn`` (ASGI) with a worker of 8 calls in flight
  behind, with 1, 8 and 32 clients, against the emulator called directly by as many clients
  and by as many as the worker has calls in flight.

The last line printed is one JSON object with the figures of the largest size at 8 calls in
flight and of the REST endpoints.
"""

import argparse
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
BATCH = 32
PROCESSES = 2
#: Texts per classify() call of the pipeline's workload: textclass_backfill's default batch.
SUBMIT_CHUNK = 500
WORDS = [
    "good",
    "bad",
    "great",
    "awful",
    "fine",
    "poor",
    "service",
    "food",
    "staff",
    "room",
    "price",
    "delivery",
    "quality",
    "support",
    "slow",
    "fast",
    "friendly",
    "rude",
    "clean",
    "dirty",
    "broken",
    "works",
    "again",
    "never",
    "always",
    "order",
    "late",
    "early",
    "refund",
    "helpful",
    "useless",
    "love",
    "hate",
    "ok",
]


def main(argv=None):
    """Run the measurements and print a table, then the figures as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000", help="comma-separated workload sizes")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per API call")
    parser.add_argument(
        "--per-text", type=float, default=0.0005, help="seconds more per text in a call"
    )
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of repeated texts")
    parser.add_argument("--in-flight", default="2,8", help="calls in flight to measure")
    parser.add_argument("--quick", action="store_true", help="2,000 texts, short probes")
    parser.add_argument(
        "--only",
        choices=["rest", "pipeline"],
        help="measure the REST endpoints only, or the pipeline only",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "2000"
    sizes = [int(size) for size in args.sizes.split(",")]
    levels = [] if args.only == "rest" else [int(level) for level in args.in_flight.split(",")]
    run_dir = Path(
        os.environ.setdefault("TEXTCLASS_TEST_RUN_DIR", tempfile.mkdtemp(prefix="textclass-bench-"))
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    db_config = setup_databases(verbosity=0, interactive=False)
    broker = os.environ.get("TEXTCLASS_TEST_BROKER", "filesystem")
    print(
        f"database: {connection.vendor}, broker: {broker}; emulator: "
        f"{args.latency * 1000:.0f} ms per call + {args.per_text * 1000:.1f} ms per text; "
        f"batches of {BATCH}; {args.duplicates:.0%} duplicates; {PROCESSES} worker processes"
    )
    summary = {}
    try:
        with EmulatorProcess(args.latency, args.per_text, run_dir) as emulator:
            probe_seconds = 2 if args.quick else 5
            for level in levels:
                limit = measure_limit(emulator, level, probe_seconds)
                client = measure_client(emulator, level, 20 * level if args.quick else 60 * level)
                print(
                    f"\n{level} calls in flight: limit {limit:,.0f} unique texts/s; "
                    f"per-text InferenceClient {client:,.1f} texts/s"
                )
                for size in sizes:
                    figures = measure_app(emulator, run_dir, size, level, args.duplicates)
                    share = figures["unique_texts_per_s"] / limit
                    print(
                        f"  {size:>7,} texts: {figures['texts_per_s']:7,.0f} texts/s "
                        f"(steady {figures['steady_texts_per_s']:,.0f}) "
                        f"({figures['unique_texts_per_s']:,.0f} unique/s, {share:.0%} of the "
                        f"limit, {figures['texts_per_s'] / client:,.0f}x the client) | "
                        f"API calls {figures['api_calls']} / {figures['min_api_calls']} = "
                        f"{figures['api_calls'] / figures['min_api_calls']:.2f} | "
                        f"{figures['db_queries_per_text']:.3f} SQL/text | latency p50 "
                        f"{figures['p50_latency_s']:.2f} s p95 {figures['p95_latency_s']:.2f} s"
                        f" | worker RSS {figures['worker_peak_rss_mb']:.0f} MB | a call "
                        f"{figures['api_call_ms_p50']} ms | stored in "
                        f"{figures['submit_seconds']} s | the last 5 % took "
                        f"{figures['last_5_percent_s']} s | waits {figures['waits']} | "
                        f"timeline (s) {figures['timeline_s']}"
                    )
                    summary = {
                        **figures,
                        "limit_unique_texts_per_s": round(limit, 1),
                        "per_text_client_texts_per_s": round(client, 1),
                        "share_of_limit": round(share, 3),
                        "database": connection.vendor,
                        "broker": broker,
                    }
            if args.only != "pipeline":
                summary.update(measure_surfaces(emulator, run_dir, args.quick))
    finally:
        teardown_databases(db_config, verbosity=0)
    flags = (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    print(f"\nreproduce: python benchmarks/pipeline.py{flags} (with the same TEXTCLASS_TEST_*)")
    print(json.dumps(summary, sort_keys=True))
    return 0


def measure_surfaces(emulator, run_dir, quick):
    """The REST endpoints and the drop-in endpoint: print their lines, return their figures."""
    rest = measure_rest(emulator, run_dir, quick)
    print(
        f"\nREST (one runserver process, {PROCESSES} worker processes, 8 calls in "
        f"flight): batch submit {rest['ingest_texts_per_s']:,.0f} texts/s stored; "
        f"single-text submit {rest['single_submit_rps']:,.0f} requests/s, a bare "
        f"DRF ModelViewSet create {rest['bare_drf_rps']:,.0f} requests/s (ratio "
        f"{rest['single_submit_rps'] / rest['bare_drf_rps']:.2f})"
    )
    dropin = measure_dropin(emulator, run_dir, quick)
    print(
        f"\nThe drop-in endpoint ({WEB_PROCESSES} uvicorn processes, ASGI; "
        f"{PROCESSES} worker processes, {DROPIN_CALLS} calls in flight) against the "
        f"emulator called directly:"
    )
    for clients, figures in dropin.items():
        ours = figures["ours"]
        line = (
            f"  {clients:2d} clients: {ours['rps']:6.1f} req/s, p50 "
            f"{ours['p50_ms']:4.0f} ms, p95 {ours['p95_ms']:4.0f} ms"
        )
        for callers, direct in figures["direct"].items():
            line += (
                f" | direct, {callers} clients: {direct['rps']:6.1f} req/s, p50 "
                f"{direct['p50_ms']:.0f} ms"
            )
        if figures["server_threads"]:
            line += f" | threads of a web process at most {figures['server_threads']}"
        print(line)
    return dict(
        ingest_texts_per_s=rest["ingest_texts_per_s"],
        single_submit_rps=rest["single_submit_rps"],
        bare_drf_rps=rest["bare_drf_rps"],
        single_vs_bare=round(rest["single_submit_rps"] / rest["bare_drf_rps"], 3),
        dropin_rps_32=dropin[32]["ours"]["rps"],
        direct_rps_32=dropin[32]["direct"][32]["rps"],
        direct_same_calls_rps_32=dropin[32]["direct"][DROPIN_CALLS]["rps"],
        dropin_p50_ms_1=round(dropin[1]["ours"]["p50_ms"], 1),
        direct_p50_ms_1=round(dropin[1]["direct"][1]["p50_ms"], 1),
        dropin_server_threads_32=dropin[32]["server_threads"],
    )


def workload(count, duplicates, seed=7):
    """``count`` texts of 20 to 500 characters, a share ``duplicates`` of them repeats."""
    rng = random.Random(seed)
    unique = max(1, round(count * (1 - duplicates)))
    texts = []
    for n in range(unique):
        length = rng.randint(20, 500)
        words = [f"#{n}"]
        while sum(len(word) + 1 for word in words) < length:
            words.append(rng.choice(WORDS))
        texts.append(" ".join(words)[:length])
    repeats = [rng.choice(texts) for _ in range(count - unique)]
    texts += repeats
    rng.shuffle(texts)
    return texts


def empty_tables():
    """Delete every request, and on PostgreSQL vacuum away the dead rows that leaves.

    Each phase then starts on tables like a site's (where autovacuum keeps up), not behind
    the dead index entries of the phase before: the partial index of pending rows that the
    worker's top-ups walk would otherwise hold 100,000 of them. No ``ANALYZE``: statistics
    stay as they were.
    """
    from django.db import connection

    from django_textclass.models import (
        ClassificationRequest,
        ClassificationScore,
        Notification,
        RequestEvent,
    )

    ClassificationRequest.objects.all().delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (ClassificationRequest, ClassificationScore, RequestEvent, Notification):
                cursor.execute(f"VACUUM {connection.ops.quote_name(model._meta.db_table)}")


class EmulatorProcess:
    """The emulator in a process of its own, as the API runs elsewhere.

    It shares the machine's cores with the rest, as before, but not the benchmark's
    interpreter: the thread that submits the workload does not hold up its answers.
    """

    def __init__(self, latency, per_text, run_dir):
        self.command = [
            sys.executable,
            "-m",
            "django_textclass.testing.emulator",
            "--port",
            "0",
            f"--latency={latency}",
            f"--per-text={per_text}",
        ]
        self.log = run_dir / "bench-emulator.log"
        self.process = self.url = None

    def __enter__(self):
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.command, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log.open("ab"), text=True
        )
        line = self.process.stdout.readline()  # "... listening on http://127.0.0.1:PORT (...)"
        if " on http://" not in line:
            self.process.kill()
            raise SystemExit(f"the emulator did not start: {line!r} (see {self.log})")
        self.url = line.split(" on ", 1)[1].split()[0]
        return self

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.wait(30)

    def model_url(self, model_id):
        """The classification URL of ``model_id``."""
        return f"{self.url}/models/{model_id}"

    def reset(self):
        """Forget the requests answered so far."""
        import requests

        requests.post(f"{self.url}/_emulator/reset", timeout=30).raise_for_status()

    def calls(self):
        """How many requests it answered since the last reset."""
        import requests

        answer = requests.get(f"{self.url}/_emulator/count", timeout=30)
        answer.raise_for_status()
        return answer.json()["requests"]


def measure_limit(emulator, concurrency, seconds):
    """Unique texts per second the emulator answers at ``concurrency`` batches in flight."""
    import requests

    url = emulator.model_url(MODEL)
    deadline = time.monotonic() + seconds
    counts = [0] * concurrency

    def post(slot):
        session = requests.Session()
        n = 0
        while time.monotonic() < deadline:
            inputs = [f"limit probe {slot} {n} {i}" for i in range(BATCH)]
            session.post(url, json={"inputs": inputs}, timeout=30).raise_for_status()
            counts[slot] += BATCH
            n += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=post, args=(slot,)) for slot in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def measure_client(emulator, concurrency, count):
    """Texts per second of ``InferenceClient`` over ``concurrency`` threads, one call each."""
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=emulator.model_url(MODEL), token="hf_bench")  # noqa: S106
    texts = workload(count, 0.0, seed=11)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client.text_classification, texts))
    return count / (time.perf_counter() - started)


def measure_app(emulator, run_dir, count, in_flight, duplicates):
    """Store ``count`` texts, time until a fresh worker finished them all; return figures."""
    from django.utils import timezone

    import django_textclass
    from django_textclass.models import ClassificationRequest, RequestEvent, Status
    from tests import celery_app

    celery_app.app.control.purge()
    empty_tables()
    emulator.reset()
    texts = workload(count, duplicates)
    unique = len(set(texts))
    counts = Path(tempfile.mkdtemp(prefix="queries-", dir=run_dir))
    worker = start_worker(emulator.url, run_dir, max(1, in_flight // PROCESSES), counts)
    try:
        warm_up(worker)
        empty_tables()
        emulator.reset()
        warmed = statements_of(counts)  # not the workload's
        started = time.perf_counter()
        started_at = timezone.now()
        for start in range(0, count, SUBMIT_CHUNK):
            django_textclass.classify(texts[start : start + SUBMIT_CHUNK], model=MODEL)
        stored = time.perf_counter() - started
        deadline = time.monotonic() + 1800
        open_statuses = [Status.PENDING, Status.RUNNING]
        while ClassificationRequest.objects.filter(status__in=open_statuses).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"{count} texts: not finished within 1,800 s")
            time.sleep(0.05)
        rss = peak_rss_mb(worker.pid)
    finally:
        worker.terminate()
        worker.wait(60)
    failed = ClassificationRequest.objects.filter(status=Status.FAILED).count()
    if failed:
        raise SystemExit(f"{count} texts: {failed} requests failed")
    latencies = sorted(
        (finished - created).total_seconds()
        for created, finished in ClassificationRequest.objects.values_list(
            "created_at", "finished_at"
        )
    )
    call_ms = sorted(
        ClassificationRequest.objects.filter(backend_ms__isnull=False).values_list(
            "backend_ms", flat=True
        )
    )
    statements = statements_of(counts) - warmed
    calls = emulator.calls()
    ends = sorted(
        finished for finished in ClassificationRequest.objects.values_list("finished_at", flat=True)
    )
    # Until the last row was final, not until the poll above saw it (up to 50 ms later).
    elapsed = (ends[-1] - started_at).total_seconds()
    waits = Counter(RequestEvent.objects.values_list("reason", flat=True))
    first_claim = min(ClassificationRequest.objects.values_list("started_at", flat=True))
    return {
        "texts": count,
        "unique_texts": unique,
        "calls_in_flight": in_flight,
        "seconds": round(elapsed, 2),
        "submit_seconds": round(stored, 2),
        "texts_per_s": round(count / elapsed, 1),
        "unique_texts_per_s": round(unique / elapsed, 1),
        "api_calls": calls,
        "min_api_calls": math.ceil(unique / BATCH),
        "db_queries_per_text": round(statements / count, 4),
        "p50_latency_s": round(latencies[len(latencies) // 2], 3),
        "p95_latency_s": round(latencies[int(len(latencies) * 0.95)], 3),
        "worker_peak_rss_mb": round(rss, 1),
        "api_call_ms_p50": call_ms[len(call_ms) // 2] if call_ms else None,
        # The last 5 % of the rows: a tail (rows waiting for a twin, a late top-up) shows here.
        "last_5_percent_s": round((ends[-1] - ends[int(len(ends) * 0.95)]).total_seconds(), 2),
        "waits": dict(waits),
        # Where a short run's fixed time goes: seconds from the first classify() call.
        # The rate while every part is busy: the middle 90 % of the results, without the
        # first commit and the first call before them, and the last call round after them.
        "steady_texts_per_s": round(
            (int(len(ends) * 0.95) - int(len(ends) * 0.05))
            / max(
                1e-3, (ends[int(len(ends) * 0.95)] - ends[int(len(ends) * 0.05)]).total_seconds()
            ),
            1,
        ),
        "timeline_s": {
            "first_claim": round((first_claim - started_at).total_seconds(), 3),
            "first_result": round((ends[0] - started_at).total_seconds(), 3),
            "stored": round(stored, 3),
            "last_result": round((ends[-1] - started_at).total_seconds(), 3),
        },
    }


def measure_rest(emulator, run_dir, quick):
    """The REST endpoints served by ``runserver`` (threaded) with a worker behind them.

    The single-text submit is measured side by side with a stock DRF ``ModelViewSet``
    create of an equivalent model (``tests/testapp/bare.py``, ``/bare/submissions/``).
    """
    import requests

    from django_textclass.models import ClassificationRequest
    from tests import celery_app  # noqa: F401 - the site's app publishes (with --only rest)

    empty_tables()
    token = bench_token()
    counts = Path(tempfile.mkdtemp(prefix="queries-", dir=run_dir))
    worker = start_worker(emulator.url, run_dir, 4, counts)
    server, base = start_server(emulator.url, run_dir, asgi=False)
    root = base.removesuffix("/api")
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    try:
        texts = workload(1000 if quick else 5000, 0.3, seed=13)
        started = time.perf_counter()
        for start in range(0, len(texts), 100):  # API_MAX_BATCH
            answer = session.post(
                f"{base}/classifications/",
                timeout=60,
                json={"texts": texts[start : start + 100], "model": MODEL},
            )
            answer.raise_for_status()
        ingest = len(texts) / (time.perf_counter() - started)
        # Single submit against a stock DRF ModelViewSet create of an equivalent model
        # (tests/testapp/bare.py) on the same server, token and clients: rounds alternate
        # which goes first, so that the machine's drift weighs on both alike, and each starts
        # once the worker has finished the texts before it (its work on our submissions
        # belongs to our rounds, not to the next one).
        endpoints = {
            "ours": lambda n, http: http.post(
                f"{base}/classifications/", timeout=60, json={"text": f"single {n}", "model": MODEL}
            ),
            "bare": lambda n, http: http.post(
                f"{root}/bare/submissions/",
                timeout=60,
                json={"text": f"single {n}", "model_id": MODEL},
            ),
        }
        for post in endpoints.values():  # first requests of each path, untimed
            timed_clients(lambda n, http, post=post: post(-n - 1, http), 8, 16, token)
        done = {name: [0, 0.0] for name in endpoints}
        per_round = 50 if quick else 200
        for turn in range(4):
            for name in sorted(endpoints, reverse=turn % 2 == 1):
                settle = time.monotonic() + 120
                while ClassificationRequest.objects.filter(
                    status__in=["pending", "running"]
                ).exists():
                    if time.monotonic() > settle:
                        raise SystemExit("the worker did not finish a round within 120 s")
                    time.sleep(0.05)
                started = time.perf_counter()
                timed_clients(
                    lambda n, http, post=endpoints[name], turn=turn: post(
                        turn * per_round + n, http
                    ),
                    8,
                    per_round,
                    token,
                )
                done[name][0] += per_round
                done[name][1] += time.perf_counter() - started
        single, bare = (
            {"rps": round(count / seconds, 1)} for count, seconds in (done["ours"], done["bare"])
        )
    finally:
        server.terminate()
        server.wait(30)
        worker.terminate()
        worker.wait(60)
    return {
        "ingest_texts_per_s": round(ingest, 1),
        "single_submit_rps": single["rps"],
        "bare_drf_rps": bare["rps"],
    }


#: Calls in flight of the worker behind the drop-in endpoint (2 processes x 4).
DROPIN_CALLS = 8
#: uvicorn processes serving it: one per core, as a site would run.
WEB_PROCESSES = 2


def measure_dropin(emulator, run_dir, quick):
    """The drop-in endpoint served by uvicorn (ASGI) with a worker, against the direct call.

    For 1, 8 and 32 clients: our requests/s and latency; the emulator called directly by as
    many clients; and called directly with the calls in flight the worker has (8), which is
    what the API would serve a client allowed that many calls. While 32 clients wait, the
    server's threads are counted.
    """
    empty_tables()
    token = bench_token()
    counts = Path(tempfile.mkdtemp(prefix="queries-", dir=run_dir))
    worker = start_worker(emulator.url, run_dir, DROPIN_CALLS // PROCESSES, counts)
    server, base = start_server(emulator.url, run_dir, asgi=True)
    results = {}
    try:
        for clients in (1, 8, 32):
            count = clients * (10 if quick else 40)
            threads = ThreadCounter(server.pid) if clients == 32 else None
            ours = timed_clients(
                lambda n, http, tag=clients: http.post(
                    f"{base}/models/{MODEL}", timeout=60, json={"inputs": f"drop-in {tag} {n}"}
                ),
                clients,
                count,
                token,
            )
            peak_threads = threads.stop() if threads else None
            direct = {}
            for callers in sorted({clients, min(clients, DROPIN_CALLS)}):
                direct[callers] = timed_clients(
                    lambda n, http, tag=callers: http.post(
                        emulator.model_url(MODEL), timeout=60, json={"inputs": f"direct {tag} {n}"}
                    ),
                    callers,
                    count,
                    token,
                )
            results[clients] = {"ours": ours, "direct": direct, "server_threads": peak_threads}
    finally:
        server.terminate()
        server.wait(30)
        worker.terminate()
        worker.wait(60)
    return results


def bench_token():
    """The DRF token of the benchmark's user (created once)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="bench")
    return Token.objects.get_or_create(user=user)[0].key


def start_server(api_url, run_dir, *, asgi):
    """``uvicorn`` (ASGI, connections from a pool) or ``runserver`` on the test settings."""
    import requests

    from tests.helpers import free_port

    port = free_port()
    env = {
        **os.environ,
        "TEXTCLASS_TEST_WORKER": "1",
        "TEXTCLASS_TEST_API_URL": api_url,
        "TEXTCLASS_TEST_PRODUCTION_TIMING": "1",
        "TEXTCLASS_TEST_NO_SIGNAL_LOG": "1",
        "PYTHONPATH": str(ROOT),
    }
    if asgi:
        env["TEXTCLASS_TEST_DB_POOL"] = "1"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(WEB_PROCESSES),
        ]
    else:
        # The site's Celery app imported first, as a project's __init__.py does.
        command = [
            sys.executable,
            "-c",
            "import sys, tests.celery_app; from "
            "django.core.management import execute_from_command_line as run; "
            "run(sys.argv)",
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
            "--skip-checks",
        ]
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command,
        cwd=ROOT,
        env=env,
        stdout=(run_dir / "bench-server.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/schema/", timeout=5).status_code == 200:
                return server, base
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("the server did not answer within 60 s")
        time.sleep(0.2)


class ThreadCounter:
    """The most threads one web process had, sampled every 20 ms until :meth:`stop`.

    The web processes are ``pid``'s children (uvicorn's workers), or ``pid`` alone.
    """

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while not self.done.wait(0.02):
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            for pid in pids or [self.pid]:
                with contextlib.suppress(OSError):
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("Threads:"):
                            self.peak = max(self.peak, int(line.split()[1]))

    def stop(self):
        """Stop sampling; returns the peak."""
        self.done.set()
        self.thread.join()
        return self.peak


def timed_clients(request, clients, count, token):
    """``count`` requests from ``clients`` threads; requests/s and latency percentiles."""
    import requests

    local = threading.local()

    def one(n):
        if not hasattr(local, "http"):
            local.http = requests.Session()
            local.http.headers["Authorization"] = f"Token {token}"
        started = time.perf_counter()
        answer = request(n, local.http)
        answer.raise_for_status()
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        took = sorted(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    return {
        "rps": round(count / elapsed, 1),
        "p50_ms": took[len(took) // 2] * 1000,
        "p95_ms": took[int(len(took) * 0.95)] * 1000,
    }


def statements_of(counts):
    """The SQL statements the worker processes have counted so far (tests/celery_app.py)."""
    return sum(int(path.read_text() or 0) for path in counts.iterdir())


def start_worker(api_url, run_dir, calls_per_process, counts):
    """Real worker processes, each run keeping ``calls_per_process`` calls out at once."""
    env = {
        **os.environ,
        "TEXTCLASS_TEST_WORKER": "1",
        "TEXTCLASS_TEST_API_URL": api_url,
        "TEXTCLASS_TEST_MAX_BATCH": str(BATCH),
        "TEXTCLASS_TEST_CALLS_IN_FLIGHT": str(calls_per_process),
        "TEXTCLASS_TEST_COUNT_QUERIES": str(counts),
        "PYTHONPATH": str(ROOT),
        # The test app's receivers log every signal to a table: a site's cost, left out.
        "TEXTCLASS_TEST_NO_SIGNAL_LOG": "1",
        # A site's sweep: every 60 s, for rows pending 30 s (the suite's are 1 s and 2 s).
        "TEXTCLASS_TEST_PRODUCTION_TIMING": "1",
    }
    log = run_dir / "bench-worker.log"
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "--loglevel=WARNING",
            f"--concurrency={PROCESSES}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname=textclass-bench-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    wait_until_ready(process)
    return process


def wait_until_ready(process, timeout=60):
    """Poll until the worker has classified one text (a ping needs a broadcasting broker)."""
    import django_textclass
    from django_textclass.models import ClassificationRequest, Status

    probe = django_textclass.classify("warming up", model=MODEL)
    deadline = time.monotonic() + timeout
    while ClassificationRequest.objects.filter(pk=probe.pk, status=Status.PENDING).exists():
        if process.poll() is not None:
            raise SystemExit(f"the worker exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not take a task within {timeout} s")
        time.sleep(0.05)
    while not ClassificationRequest.objects.get(pk=probe.pk).is_finished:
        time.sleep(0.05)
    probe.delete()


def warm_up(process, texts=4000):
    """Have the worker classify ``texts`` distinct texts first, as a running site's has.

    Every call thread of each process then holds its database connection and its connection
    to the API, as on a site after a worker's first minutes: a size's figures are those of its
    work, not of the connections a process opens once in its life.
    """
    import django_textclass
    from django_textclass.models import ClassificationRequest, Status

    for start in range(0, texts, 1000):
        django_textclass.classify(
            [f"warming up {n}" for n in range(start, min(texts, start + 1000))], model=MODEL
        )
    deadline = time.monotonic() + 120
    open_statuses = [Status.PENDING, Status.RUNNING]
    while ClassificationRequest.objects.filter(status__in=open_statuses).exists():
        if process.poll() is not None:
            raise SystemExit(f"the worker exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not finish its warm-up within 120 s")
        time.sleep(0.05)


def peak_rss_mb(pid):
    """The largest peak resident set (VmHWM) among the worker and its child processes."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    peaks = []
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


if __name__ == "__main__":
    sys.exit(main())
