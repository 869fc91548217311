"""10,000 texts through the REST API while the worker is restarted twice."""

import threading
import time

import pytest
import requests
from django.utils import timezone
from rest_framework.authtoken.models import Token

from django_textclass.models import ClassificationRequest
from tests.faults.audit import AT_LEAST_ONCE, audit
from tests.faults.figures import Clock, Figures
from tests.faults.rig import assert_classified_once, deliver_owed_signals, texts
from tests.helpers import wait_for

pytestmark = pytest.mark.faults

TEXTS = 10_000
BATCH = 100  # API_MAX_BATCH
CLIENTS = 4
#: Texts per second the clients submit together: the submission lasts about 15 s, long
#: enough for both restarts to land in it.
PACE = 700


class Clients:
    """``CLIENTS`` threads posting batches, each with its ``Idempotency-Key``; a batch that
    gets no answer (or a 5xx) is posted again with the same key, as a careful client does."""

    def __init__(self, base, token, corpus):
        self.base, self.token = base, token
        self.batches = [corpus[start : start + BATCH] for start in range(0, len(corpus), BATCH)]
        self.ids = {}  # batch number -> public ids, in order
        self.replays = 0
        self.retries = 0
        self.errors = []
        self._next = iter(range(len(self.batches)))
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    @property
    def accepted(self):
        with self._lock:
            return sum(len(ids) for ids in self.ids.values())

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in self.threads), "the clients hung"
        assert not self.errors, self.errors[:5]

    def _run(self):
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.token}"
        while True:
            with self._lock:
                number = next(self._next, None)
            if number is None:
                return
            # Keep to the pace: batch n goes no earlier than n * BATCH / PACE seconds in.
            time.sleep(max(0.0, self.started + number * BATCH / PACE - time.monotonic()))
            try:
                ids = self._post(session, number)
            except Exception as exc:  # noqa: BLE001 - reported by join()
                self.errors.append(f"batch {number}: {exc!r}")
                return
            with self._lock:
                self.ids[number] = ids

    def _post(self, session, number):
        body = {"texts": self.batches[number]}
        for attempt in range(6):
            try:
                answer = session.post(
                    f"{self.base}/classifications/",
                    json=body,
                    timeout=30,
                    headers={"Idempotency-Key": f"load-{number}"},
                )
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code == 202:
                if answer.headers.get("Idempotent-Replayed") == "true":
                    with self._lock:
                        self.replays += 1
                results = answer.json()["results"]
                assert [item["text"] for item in results] == self.batches[number]
                return [item["id"] for item in results]
            if answer is not None and answer.status_code < 500:
                raise AssertionError(f"{answer.status_code}: {answer.text[:300]}")
            with self._lock:
                self.retries += 1
            time.sleep(0.5 * (attempt + 1))
        raise AssertionError(f"batch {number} was never accepted")


def test_10000_texts_through_the_rest_api_while_the_worker_restarts_twice__all_counted(
    rig, figures, django_user_model
):
    """Four clients post 10,000 texts (100 per call) to a served site; meanwhile the worker
    gets SIGTERM (a deploy: it finishes what it holds) and a new one starts, then the new one
    gets SIGKILL (a crash) and a third starts. Beat sweeps throughout."""
    user = django_user_model.objects.create_user("loader", password="loader-pw")
    token = Token.objects.create(user=user).key
    web = rig.web_server()
    rig.emulator.latency = 0.05
    first = rig.worker("first")
    rig.beat()
    clock = Clock()
    clients = Clients(web.base, token, texts(TEXTS, 8000, tag="load")).start()

    wait_for(
        lambda: clients.accepted >= 3000,
        timeout=120,
        interval=0.1,
        message="3,000 texts accepted",
        describe=rig.describe,
    )
    warm_shutdown_s = first.terminate()  # SIGTERM: a warm shutdown
    rig.worker("second")
    progress = rig.final()
    wait_for(
        lambda: clients.accepted >= 6000 and rig.final() >= progress + 500,
        timeout=120,
        interval=0.1,
        message="6,000 accepted and the second worker under way",
        describe=rig.describe,
    )
    rig.workers[-1].kill()  # SIGKILL: a crash
    clock.mark("killed")
    killed_at = timezone.now()
    held = {
        pk: (model, text)
        for pk, model, text in ClassificationRequest.objects.filter(status="running").values_list(
            "pk", "model_id", "text"
        )
    }
    assert held, "the second worker held nothing when it died"
    rig.worker("third")
    rig.wait_rows(held, timeout=120, message="the killed worker's requests to be final")
    clock.mark("recovered")
    clients.join(timeout=180)
    clock.mark("submitted")
    rig.wait_all_final(TEXTS, timeout=240)
    clock.mark("final")
    rig.wait_signals_sent(written_after=killed_at)
    owed = deliver_owed_signals()

    accepted = [public_id for number in sorted(clients.ids) for public_id in clients.ids[number]]
    assert len(accepted) == TEXTS and len(set(accepted)) == TEXTS  # every text, once
    report = audit(accepted, signals=AT_LEAST_ONCE)
    assert report.succeeded == TEXTS
    assert_classified_once(rig.emulator, except_for=set(held.values()))
    figures(
        Figures(
            "10,000 texts via REST, worker SIGTERMed then SIGKILLed",
            texts=TEXTS,
            unique_texts=rig.unique_texts(),
            recovery_s=clock.between("killed", "recovered"),
            recovery_from=f"SIGKILL of the second worker to its {len(held)} held rows final",
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={
                "submit_s": round(clock.marks["submitted"] - clock.started, 1),
                "warm_shutdown_s": round(warm_shutdown_s, 1),
                "kill_to_all_final_s": round(clock.between("killed", "final"), 1),
                "client_retries": clients.retries,
                "replayed": clients.replays,
                "signals_owed": owed,
            },
        ).count_calls(rig.emulator)
    )
