"""The Hugging Face token is repeated nowhere: one full run, then everything searched for it.

A real worker process holds a recognisable token (``hf_LEAKCANARY...``) and classifies
through the loopback emulator, which requires that token: successes, retries after a 503,
a 429 and a 500, a 401 whose body repeats the ``Authorization`` header, and a 403 that
repeats it in its body and in ``X-Error-Message``. Requests come in through the REST API,
the drop-in endpoint and ``classify()``. Then the test reads every place the token could
have gone to and finds it in none:

* every log record: the worker's log (at DEBUG) and the test process's own records;
* every broker message: the bytes passed to and from Redis or RabbitMQ (through a recording
  relay), or the files of the filesystem broker, those the worker took included;
* every stored row: ``dumpdata`` of every app, and ``SELECT *`` over every table;
* the throttle cache's files;
* the admin's pages (index, changelists, change pages of each object, dashboard, CSV
  export) and the API's answers (those of the run, and list, detail, stats and schema).

Searched for: the token, its distinctive parts (case-insensitive), and its base64 (at each
of the three alignments: kombu encodes message bodies so), hex and URL-quoted forms.
"""

import base64
import io
import json
import logging
import pickle
import secrets
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import django_textclass
from django_textclass import dispatch
from django_textclass.models import ClassificationRequest, Status
from django_textclass.testing.emulator import Reply
from tests import celery_app
from tests.integration.helpers import MODEL, Worker, finished
from tests.integration.wiretap import Wiretap

pytestmark = pytest.mark.integration

CANARY = f"hf_LEAKCANARY{secrets.token_hex(12)}"


def forms_of(token):
    """What the token would look like wherever it went: ``{name: lower-cased bytes}``."""
    raw = token.encode()
    forms = {
        "token": raw,
        "marker": b"leakcanary",
        "random part": raw[-24:],
        "url-quoted": quote(f"Bearer {token}").encode(),
        "hex": raw.hex().encode(),
    }
    for shift in range(3):  # base64 of the token at any offset in a longer text
        for name, encode in (
            ("base64", base64.b64encode),
            ("urlsafe base64", base64.urlsafe_b64encode),
        ):
            encoded = encode(b"\0" * shift + raw)
            start = -(-shift * 4 // 3)  # characters that also encode the bytes before it
            forms[f"{name} (offset {shift})"] = encoded[start:-4]
    return {name: value.lower() for name, value in forms.items()}


def leaks(captured, token=CANARY):
    """``[(source, form), ...]`` for each captured text that holds a form of ``token``."""
    forms = forms_of(token)
    found = []
    for source, content in captured.items():
        data = content if isinstance(content, bytes) else content.encode("utf-8", "replace")
        data = data.lower()
        found += [(source, name) for name, form in forms.items() if form in data]
    return found


def test_forms_of__finds_the_token_however_it_was_written():
    # Made at run time like CANARY: a literal of a token's shape trips secret scanners.
    token = f"hf_LEAKCANARY{secrets.token_hex(12)}"
    message = json.dumps({"args": [[1, 2]], "auth": f"Bearer {token}"}).encode()
    written = {
        "plain": f"HTTP 401: Bearer {token}",
        "upper": token.upper(),
        "cut": f"...{token[-24:]}",
        **{f"base64 {shift}": base64.b64encode(b"x" * shift + message) for shift in range(3)},
        "urlsafe": base64.urlsafe_b64encode(message),
        "quoted": quote(f"Authorization: Bearer {token}"),
        "hex": message.hex(),
    }

    found = {source for source, _ in leaks(written, token)}

    assert found == set(written)
    assert leaks({"clean": "HTTP 401 (***): the token is missing or invalid"}, token) == []


# --- the run --------------------------------------------------------------------------------


@pytest.fixture
def broker_capture(tmp_path, monkeypatch):
    """How this test sees every broker message: ``(worker env, read())``.

    ``read()`` is called once, at the end, after the worker stopped: with a relay it closes it,
    so that every byte sent is recorded.
    """
    kind = django_settings.BROKER_KIND
    if kind == "filesystem":
        kept = tmp_path / "taken-messages"
        kept.mkdir()
        folders = [
            kept,
            Path(django_settings.RUN_DIR) / "broker",
            Path(django_settings.RUN_DIR) / "broker-control",
        ]

        def read():  # what the worker took, what is still waiting, the exchange tables
            return {
                f"broker file {path}": path.read_bytes()
                for folder in folders
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            }

        yield {"TEXTCLASS_TEST_BROKER_KEEP": str(kept)}, read
        return
    tap = Wiretap(django_settings.CELERY_BROKER_URL).start()
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", tap.url)  # this process publishes through it
    dispatch.drop_connections()

    def read():  # once every client closed its connections (stop the worker first)
        dispatch.drop_connections()
        tap.stop()
        return {f"broker stream {n}": data for n, data in enumerate(tap.recorded())}

    try:
        yield {"TEXTCLASS_TEST_BROKER_URL": tap.url}, read
    finally:
        dispatch.drop_connections()
        tap.stop()


@pytest.fixture
def canary_worker(
    celery_worker_process, emulator, transactional_db, broker_capture, tmp_path, settings
):
    """The only worker: one holding the canary token, logging at DEBUG."""
    env, _ = broker_capture
    # This process holds it too (the admin and the API read the same settings).
    backends = settings.TEXTCLASS["BACKENDS"]
    default = {
        **backends["default"],
        "OPTIONS": {**backends["default"]["OPTIONS"], "TOKEN": CANARY},
    }
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "BACKENDS": {**backends, "default": default},
        "API_THROTTLE_RATE": "1000/minute",
    }
    emulator.token = CANARY  # a call without the canary gets 401
    celery_worker_process.stop()
    worker = Worker(
        emulator.url,
        tmp_path / "canary-worker.log",
        name="canary",
        loglevel="DEBUG",
        env={**env, "TEXTCLASS_TEST_HF_TOKEN": CANARY, "TEXTCLASS_TEST_LOG_LEVEL": "DEBUG"},
    )
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
        emulator.token = None
        celery_worker_process.start()  # the session's worker again


class Recorder:
    """An API client that keeps every answer (status, headers, body)."""

    def __init__(self, client):
        self.client, self.answers = client, {}

    def __call__(self, method, path, **kwargs):
        response = getattr(self.client, method)(path, **kwargs)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        self.answers[f"{method.upper()} {path} #{len(self.answers)}"] = (
            f"{response.status_code} {dict(response.items())!r} ".encode() + body
        )
        return response


def run_everything(emulator, alice):
    """Successes, retries, a 401 and a 403 that echo the header, through every entry point."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    call = Recorder(api)
    drop_in = APIClient()
    drop_in.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get(user=alice).key}")
    drop_in_call = Recorder(drop_in)

    # Retries, then a success (submitted through the REST API).
    emulator.script(Reply.loading(0.2), Reply.rate_limited(retry_after=1), Reply.server_error(500))
    response = call(
        "post",
        "/api/classifications/",
        data={"text": "I love this film", "model": MODEL},
        format="json",
    )
    assert response.status_code == 202, response.content
    (retried,) = finished(ClassificationRequest.objects.get(uuid=response.json()["id"]))

    # A 401 that repeats the Authorization header (through the drop-in endpoint).
    emulator.script(Reply.unauthorized(echo=True))
    response = drop_in_call(
        "post", f"/api/models/{MODEL}", data={"inputs": "I hate this film"}, format="json"
    )
    assert response.status_code == 502, response.content
    unauthorized = ClassificationRequest.objects.get(uuid=response["X-Textclass-Requests"])

    # A 403 that repeats it in its body and its X-Error-Message header (classify()).
    emulator.script(Reply.forbidden(echo=True))
    (forbidden,) = finished(django_textclass.classify("I am not sure", model=MODEL, owner=alice))

    # The 401 sent again by the user, now answered; and a batch that waits for its answers.
    response = call("post", f"/api/classifications/{unauthorized.uuid}/retry/")
    assert response.status_code == 202, response.content
    response = call(
        "post",
        "/api/classifications/",
        format="json",
        data={
            "texts": ["What a lovely day", "Terrible service", "It is fine"],
            "model": MODEL,
            "wait": 20,
        },
    )
    assert response.status_code == 200, response.content
    rows = finished(
        retried,
        unauthorized,
        forbidden,
        *ClassificationRequest.objects.exclude(pk__in=[retried.pk, unauthorized.pk, forbidden.pk]),
    )
    # Read back through the API, as a client would.
    call("get", "/api/classifications/")
    for row in rows:
        call("get", f"/api/classifications/{row.uuid}/")
    call("get", "/api/stats/")
    call("get", "/api/schema/")
    return rows, {**call.answers, **{f"drop-in {k}": v for k, v in drop_in_call.answers.items()}}


def admin_pages(client):
    """Every page of the app's admin, with each object's change page."""
    pages = {}

    def get(url):
        response = client.get(url, follow=True)
        assert response.status_code == 200, (url, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        pages[f"admin {url}"] = body

    get(reverse("admin:index"))
    get(reverse("admin:app_list", args=["django_textclass"]))
    for model in admin.site._registry:
        if model._meta.app_label != "django_textclass":
            continue
        info = model._meta.app_label, model._meta.model_name
        get(reverse("admin:{}_{}_changelist".format(*info)))
        for pk in model.objects.values_list("pk", flat=True)[:20]:
            get(reverse("admin:{}_{}_change".format(*info), args=[pk]))
    get(reverse("admin:django_textclass_classificationrequest_dashboard"))
    get(reverse("admin:django_textclass_classificationrequest_export"))
    return pages


def stored_rows():
    """``dumpdata`` of every app, and every row of every table as the database returns it."""
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    dumped = {"dumpdata": out.getvalue()}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            dumped[f"table {table}"] = repr(cursor.fetchall())
    return dumped


def cache_files():
    """The file cache (the API's throttle counters), each value unpacked as Django wrote it."""
    found = {}
    for path in Path(django_settings.CACHES["default"]["LOCATION"]).rglob("*.djcache"):
        with path.open("rb") as file:
            pickle.load(file)  # the expiry time
            found[f"cache {path.name}"] = zlib.decompress(file.read())
    return found


def test_full_run__the_token_is_nowhere(
    canary_worker, emulator, broker_capture, alice, admin_client, caplog
):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django_textclass")

    rows, answers = run_everything(emulator, alice)

    # The run was the one meant: the token reached the API, which repeated it twice ...
    sent = [req.headers.get("authorization") for req in emulator.requests]
    assert sent and set(sent) == {f"Bearer {CANARY}"}
    assert {401, 403, 429, 500, 503} <= {req.status for req in emulator.requests}
    # ... and the app kept the server's words (whether it kept the token is the search's job).
    by_status = {row.error_code: row for row in rows if row.status == Status.FAILED}
    assert set(by_status) == {"http_403"}, [(r.status, r.error_code) for r in rows]
    assert "(credentials: Bearer " in by_status["http_403"].error_message
    assert sum(row.status == Status.SUCCEEDED for row in rows) == len(rows) - 1
    assert any(
        b"Invalid credentials in Authorization header: Bearer " in answer
        for answer in answers.values()
    )  # the drop-in endpoint's 502
    dispatch.flush(timeout=10)
    canary_worker.stop()  # its log complete, its broker connections closed

    _, read_broker = broker_capture
    captured = {
        "worker log": canary_worker.log_path.read_bytes(),
        **{
            f"log record {n}": "\n".join(
                [logging.Formatter().format(record), repr(record.args), repr(vars(record))]
            )
            for n, record in enumerate(caplog.records)
        },
        **read_broker(),
        **stored_rows(),
        **cache_files(),
        **admin_pages(admin_client),
        **answers,
    }

    # Everything was read: each kind of source holds what the run left there.
    assert b"http_403" in captured["worker log"] and b"DEBUG" in captured["worker log"]
    assert any(
        "Bad Gateway" in text for name, text in captured.items() if name.startswith("log record")
    )  # Django's record of the drop-in's 502
    broker = b"".join(data for name, data in captured.items() if name.startswith("broker"))
    assert b"django_textclass.run_batch" in broker
    assert "I love this film" in captured["dumpdata"]
    assert any(
        b"I am not sure" in page
        for name, page in captured.items()
        if name.startswith("admin /admin/django_textclass/classificationrequest/")
    )
    assert len([name for name in captured if name.startswith("admin")]) > len(rows)

    found = leaks(captured)
    assert found == [], "the token is in: " + ", ".join(sorted({source for source, _ in found}))


def test_search__finds_a_token_left_in_each_kind_of_place(
    broker_capture, admin_client, caplog, transactional_db
):
    """The searches above, where the token was put on purpose: they find it."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("django_textclass").warning("calling with %s", CANARY)
    ClassificationRequest.objects.create(model_id=MODEL, text=f"say {CANARY}", text_hash="x")
    queue = f"textclass-leak-control-{secrets.token_hex(4)}"  # no worker reads it
    app = celery_app.app
    try:
        with app.connection_for_write() as broker:  # through the relay, if there is one
            app.send_task("textclass.leak_control", args=[CANARY], queue=queue, connection=broker)
        _, read_broker = broker_capture
        captured = {
            **read_broker(),
            **stored_rows(),
            **admin_pages(admin_client),
            **{f"log record {n}": record.getMessage() for n, record in enumerate(caplog.records)},
        }
    finally:
        with app.connection_for_write(django_settings.CELERY_BROKER_URL) as broker:
            broker.default_channel.queue_purge(queue)
            broker.default_channel.queue_delete(queue)

    kinds = {source.split(" ")[0] for source, _ in leaks(captured)}

    assert kinds == {"broker", "dumpdata", "table", "admin", "log"}
