"""The drop-in endpoint served as ASGI by uvicorn, as a site would, with a real worker.

The view stores the inputs, then awaits the worker's commit (a notification on PostgreSQL)
without a thread of its own; concurrent clients' texts share the worker's calls.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from rest_framework.authtoken.models import Token

from django_textclass.models import ClassificationRequest, Status
from django_textclass.testing.emulator import Reply
from django_textclass.testing.scoring import rank
from tests.api.helpers import MODEL
from tests.faults.audit import audit
from tests.helpers import ROOT, free_port, wait_for
from tests.integration.helpers import finished

pytestmark = pytest.mark.integration
SENTIMENT = ["POSITIVE", "NEGATIVE"]


class Url(str):
    """The server's URL, and its process id (``pid``)."""


def threads_of(pid):
    """How many threads process ``pid`` has now."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


@pytest.fixture
def asgi_url(worker, emulator, tmp_path):
    """``uvicorn tests.asgi:application`` on a free port, on the test database."""
    port = free_port()
    env = {
        **os.environ,
        "TEXTCLASS_TEST_WORKER": "1",
        "TEXTCLASS_TEST_API_URL": emulator.url,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "TEXTCLASS_TEST_DB_POOL": "1",
        "TEXTCLASS_TEST_INFERENCE_WAIT": "0.5",
    }
    log = (tmp_path / "uvicorn.log").open("ab")
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
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
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = Url(f"http://127.0.0.1:{port}")

    def up():
        if server.poll() is not None:
            pytest.fail(
                f"uvicorn exited with {server.returncode}: "
                f"{(tmp_path / 'uvicorn.log').read_text()[-2000:]}"
            )
        try:
            return requests.get(f"{url}/api/schema/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, timeout=60, message="uvicorn to answer")
        url.pid = server.pid
        yield url
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def test_concurrent_clients__share_calls_and_each_gets_its_answer(asgi_url, alice, emulator):
    emulator.latency = 0.3
    key = Token.objects.create(user=alice).key
    texts = [f"a review from client {n}" for n in range(16)]

    def post(text):
        return requests.post(
            f"{asgi_url}/api/models/{MODEL}",
            json={"inputs": text},
            headers={"Authorization": f"Bearer {key}", "x-wait-for-model": "true"},
            timeout=60,
        )

    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(post, texts))

    for text, answer in zip(texts, answers, strict=True):
        assert answer.status_code == 200, answer.text
        assert answer.json() == [rank(SENTIMENT, text)]
    # 16 clients at once, fewer calls: their texts went out together.
    assert len(emulator.requests) < len(texts)
    rows = finished(*ClassificationRequest.objects.all())
    audit(rows)
    assert {row.status for row in rows} == {Status.SUCCEEDED}


def test_not_ready_in_time__503_then_the_same_call_gets_the_answer(asgi_url, alice, emulator):
    emulator.script(Reply.loading(estimated_time=2.0))  # longer than the server's 0.5 s wait
    key = Token.objects.create(user=alice).key

    def post(**headers):
        return requests.post(
            f"{asgi_url}/api/models/{MODEL}",
            json={"inputs": "slow one"},
            headers={"Authorization": f"Bearer {key}", **headers},
            timeout=60,
        )

    first = post()
    assert first.status_code == 503, first.text
    assert first.json()["error"] == f"Model {MODEL} is currently loading"

    again = post(**{"x-wait-for-model": "true"})  # the same stored request; none added
    assert again.status_code == 200, again.text
    assert again.json() == [rank(SENTIMENT, "slow one")]
    assert again.headers["X-Textclass-Requests"] == first.headers["X-Textclass-Requests"]
    assert ClassificationRequest.objects.count() == 1


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="counts threads in /proc")
def test_waiting_clients__hold_no_thread_each(asgi_url, alice, emulator):
    """Django's own handler keeps a thread per request until it is answered; ours does not:
    three times the clients waiting at once, not one more thread each."""
    emulator.latency = 1.5
    key = Token.objects.create(user=alice).key

    def threads_while_waiting(clients, round_):
        def post(n):
            return requests.post(
                f"{asgi_url}/api/models/{MODEL}",
                json={"inputs": f"round {round_}, {n}"},
                headers={"Authorization": f"Bearer {key}", "x-wait-for-model": "true"},
                timeout=60,
            )

        stored = ClassificationRequest.objects.count() + clients
        with ThreadPoolExecutor(clients) as pool:
            answers = pool.map(post, range(clients))
            wait_for(
                lambda: ClassificationRequest.objects.count() == stored,
                timeout=30,
                message="every client's request stored and waiting",
            )
            threads = threads_of(asgi_url.pid)
            assert {answer.status_code for answer in answers} == {200}
        return threads

    few, many = threads_while_waiting(12, 1), threads_while_waiting(36, 2)

    # Django's handler: one more per client (measured: 25 threads with 12 clients, 49 with 36).
    assert many - few < 8, (few, many)
