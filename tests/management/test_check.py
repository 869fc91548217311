"""``textclass_check``: one call per configured model, through the real backend and the real
loopback emulator; each error class with the hint it prints and the exit status.

Nothing goes through the queue and nothing is stored: the tests count the rows.
"""

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_textclass.models import ClassificationRequest
from django_textclass.testing.emulator import InferenceAPIEmulator, Reply
from tests.fakes import textclass_settings
from tests.helpers import ROOT

pytestmark = pytest.mark.django_db

SST2 = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
HF = "django_textclass.backends.huggingface.Backend"


def canary():
    # Made at run time, as the token-leak test's: no token-shaped literal in the repository.
    return "hf_" + "check" + "Canary" + "7e1f"


def backends(emulator, url=None, **options):
    return {
        "default": {
            "BACKEND": HF,
            "OPTIONS": {
                "API_URL": url or emulator.url + "/models/{model_id}",
                "TOKEN": canary(),
                "READ_TIMEOUT": 2,
                **options,
            },
        },
        "offline": {"BACKEND": "django_textclass.backends.offline.Backend"},
    }


def configured(emulator, models=None, url=None, **options):
    return textclass_settings(
        BACKENDS=backends(emulator, url, **options),
        MODELS=models
        if models is not None
        else {"sentiment": {"MODEL": SST2, "REVISION": "714eb0f"}},
    )


def check(*args):
    """Run the command; returns ``(exit status, stdout, stderr)``."""
    out, err = StringIO(), StringIO()
    try:
        call_command("textclass_check", *args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(str(exc))
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# --- a model that answers -------------------------------------------------------------------


def test_check__a_model_that_answers__shape_labels_latency_exit_0(emulator):
    with configured(emulator):
        status, out, _ = check()

    assert status == 0
    lines = out.splitlines()
    assert lines[0] == (
        f"sentiment: backend 'default', {SST2}, revision 714eb0f (a label "
        "only: this backend loads no revisions)"
    )
    assert lines[1] == f"  url: {emulator.url}/models/{SST2}"
    assert lines[2].startswith("  OK: answered in ") and lines[2].endswith(" ms")
    assert lines[3] == "  answer: nested [[{label, score} x2]]"
    assert lines[4].startswith("  labels: POSITIVE 0.") and ", NEGATIVE 0." in lines[4]
    assert lines[-1] == "1 checked: 1 answered, 0 failed."
    (sent,) = emulator.requests
    assert sent.body == {"inputs": "I like you. I love you"}
    assert sent.headers["x-use-cache"] == "false"  # the model itself answers, not a cache
    assert ClassificationRequest.objects.count() == 0


def test_check__flat_answer_of_a_dedicated_endpoint(emulator):
    emulator.shape = "flat"
    with configured(emulator):
        _, out, _ = check()

    assert "  answer: flat [{label, score} x2]" in out


def test_check__every_key_and_its_own_backend(emulator):
    models = {"sentiment": {"MODEL": SST2}, "local": {"MODEL": "acme/x", "BACKEND": "offline"}}
    with configured(emulator, models):
        status, out, _ = check()

    assert status == 0
    assert out.index("local: backend 'offline'") < out.index("sentiment: backend 'default'")
    assert "  answer: built in process" in out
    assert len(emulator.requests) == 1


def test_check__without_a_registry_the_default_model_on_the_default_backend(emulator):
    with configured(emulator, models={}):
        status, out, _ = check()

    assert status == 0 and out.startswith(f"{SST2}: backend 'default', {SST2}\n")


def test_check__a_wrong_default_model__reported_as_failed_not_a_bad_argument(emulator, settings):
    with configured(emulator, models={}):
        settings.TEXTCLASS = {**settings.TEXTCLASS, "DEFAULT_MODEL": "../x"}
        status, out, _ = check()

    assert status == 1
    assert "FAILED (configuration): TEXTCLASS['DEFAULT_MODEL'] '../x'" in out
    assert emulator.requests == []


def test_check__model_option_checks_one_key_or_one_hub_id(emulator):
    models = {"sentiment": {"MODEL": SST2}, "local": {"MODEL": "acme/x", "BACKEND": "offline"}}
    with configured(emulator, models):
        _, by_key, _ = check("--model", "sentiment")
        _, by_id, _ = check("--model", "acme/other")

    assert by_key.splitlines()[-1] == "1 checked: 1 answered, 0 failed."
    assert by_id.startswith("acme/other: backend 'default', acme/other")
    assert [request.model_id for request in emulator.requests] == [SST2, "acme/other"]


def test_check__probe_text_and_the_key_s_parameters_are_sent(emulator):
    models = {"sentiment": {"MODEL": SST2, "PARAMETERS": {"top_k": 1}}}
    with configured(emulator, models):
        check("--text", "Le service était parfait")

    assert emulator.requests[0].body == {
        "inputs": "Le service était parfait",
        "parameters": {"top_k": 1},
    }


def test_check__json_document_for_scripts(emulator):
    emulator.script(Reply.normal(), Reply.forbidden())
    models = {"a": {"MODEL": SST2, "REVISION": "v1"}, "b": {"MODEL": "acme/b"}}
    with configured(emulator, models):
        status, out, _ = check("--json")

    document = json.loads(out)
    assert status == 1
    assert (document["ok"], document["checked"], document["failed"]) == (False, 2, 1)
    first, second = document["models"]
    assert (first["name"], first["key"], first["model"], first["revision"]) == (
        "a",
        "a",
        SST2,
        "v1",
    )
    assert first["ok"] is True and first["labels"] == ["POSITIVE", "NEGATIVE"]
    assert first["shape"] == "nested [[{label, score} x2]]"
    assert isinstance(first["latency_ms"], int) and first["revision_sent"] is False
    assert second["ok"] is False and second["error"]["code"] == "http_403"
    assert second["error"]["diagnosis"] == "forbidden"


# --- each error class: the code, the likely fix, exit 1 ------------------------------------


ERRORS = [
    # (id, reply scripted, backend options, code, words of the hint)
    ("401", Reply.unauthorized(), {}, "http_401", "The token is missing or invalid"),
    ("403", Reply.forbidden(), {}, "http_403", "'Make calls to Inference Providers' permission"),
    (
        "402",
        Reply.error(402, "You have exceeded your monthly included credits"),
        {},
        "http_402",
        "credits are used up",
    ),
    (
        "404-router",
        Reply.plain(404, "Not Found"),
        {},
        "http_404",
        "not deployed on the hf-inference provider",
    ),
    (
        "410",
        Reply.error(410, "https://api-inference.huggingface.co is no longer supported"),
        {},
        "http_410",
        "410 Gone",
    ),
    ("503-asleep", Reply.unavailable(), {}, "http_503", "SCALE_UP_TIMEOUT"),
    ("503-loading", Reply.loading(), {}, "http_503", "asleep (scaled to zero)"),
    ("429", Reply.rate_limited(), {}, "http_429", "Rate limited"),
    ("422", Reply.error(422, "Input validation error"), {}, "http_422", "refused the probe"),
    (
        "424",
        Reply.error(424, "Model is not a classifier model"),
        {},
        "http_424",
        "serves a text-classification model",
    ),
    ("500", Reply.server_error(500), {}, "http_500", "The server failed"),
    ("502-html", Reply.server_error(502), {}, "http_502", "The server failed"),
    ("timeout", Reply.hang(1.5), {"READ_TIMEOUT": 0.3}, "timeout", "raise READ_TIMEOUT"),
    ("wrong-shape", Reply.wrong_shape(), {}, "invalid_response", "not a text-classification"),
    ("not-json", Reply.malformed(), {}, "invalid_response", "not a text-classification"),
]


@pytest.mark.parametrize(
    ("reply", "options", "code", "words"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_check__each_error_class__its_code_and_likely_fix(emulator, reply, options, code, words):
    emulator.script(reply)
    with configured(emulator, **options):
        status, out, err = check()

    assert status == 1
    assert f"  FAILED ({code}) after " in out
    assert words in out.split("likely fix: ")[1]
    assert out.splitlines()[-1] == "1 checked: 0 answered, 1 failed."
    assert err.strip() == "1 of 1 failed: sentiment."
    assert ClassificationRequest.objects.count() == 0


def test_check__404_on_a_fixed_url__the_wrong_route(emulator):
    with configured(emulator, url=emulator.url + "/v1/classify"):
        status, out, _ = check()

    assert status == 1
    assert "FAILED (http_404)" in out and "the URL the endpoint's page shows" in out
    # The host was asked whether it is a TEI server (GET /info): it is not.
    assert [(r.method, r.path) for r in emulator.requests] == [
        ("POST", "/v1/classify"),
        ("GET", "/info"),
    ]


def test_check__405_on_a_fixed_url__the_wrong_route(emulator):
    emulator.script(Reply.plain(405, "Method Not Allowed"))
    with configured(emulator, url=emulator.url + "/models/acme/fixed"):
        _, out, _ = check()

    assert "FAILED (http_405)" in out and "the URL the endpoint's page shows" in out


def test_check__an_endpoint_url_key_404__not_taken_for_the_router(emulator):
    models = {"toxicity": {"MODEL": emulator.url + "/models/acme/dedicated"}}
    emulator.script(Reply.plain(404, "Not Found"))
    with configured(emulator, models):
        _, out, _ = check()

    assert "  url: " + emulator.url + "/models/acme/dedicated" in out
    assert "the URL the endpoint's page shows" in out


# --- a TEI server behind the Hugging Face backend: the wrong route, and its real answers ----


@pytest.fixture
def tei(emulator):
    from django_textclass.testing.tei import TEIMode

    emulator.tei = TEIMode()
    yield emulator
    emulator.tei = None


@pytest.mark.parametrize(("path", "status"), [("/embed", 404), ("/info", 405)])
def test_check__hugging_face_backend_on_a_tei_host__use_the_tei_backend(tei, path, status):
    # TEI has no such POST route: it answers 404 (/embed of another model kind) or 405 (/info
    # is GET only); its GET /info tells the host apart.
    with configured(tei, url=tei.url + path):
        _, out, _ = check()

    assert f"FAILED (http_{status})" in out
    assert "The host is a Text Embeddings Inference (TEI) server" in out
    assert "django_textclass.backends.tei.Backend" in out
    assert [(r.method, r.path) for r in tei.requests] == [("POST", path), ("GET", "/info")]
    assert tei.requests[1].headers["authorization"] == f"Bearer {canary()}"  # same host's own


def test_check__a_per_model_route_on_a_tei_host__not_mistaken_for_the_router(tei):
    tei.script(Reply.plain(404, "Not Found"))
    with configured(tei):
        _, out, _ = check()

    assert "The host is a Text Embeddings Inference (TEI) server" in out
    assert "not deployed on the hf-inference provider" not in out


def test_check__the_tei_backend_answers_with_its_shape(tei):
    backends = {
        "tei": {"BACKEND": "django_textclass.backends.tei.Backend", "OPTIONS": {"URL": tei.url}}
    }
    with textclass_settings(
        BACKENDS=backends, MODELS={"sentiment": {"MODEL": SST2, "BACKEND": "tei"}}
    ):
        status, out, _ = check()

    assert status == 0, out
    assert f"  url: {tei.url}" in out
    assert "  answer: flat [{label, score} x2]" in out  # TEI's answer to one sequence


def test_check__the_tei_backend_at_a_wrong_base_url__its_own_hint(tei):
    backends = {
        "tei": {
            "BACKEND": "django_textclass.backends.tei.Backend",
            "OPTIONS": {"URL": tei.url + "/v1"},
        }
    }
    with textclass_settings(
        BACKENDS=backends, MODELS={"sentiment": {"MODEL": SST2, "BACKEND": "tei"}}
    ):
        _, out, _ = check()

    assert "FAILED (http_404)" in out
    assert "set its URL to the TEI server's base URL (without /predict)" in out


def test_check__connection_refused__nothing_listens_there():
    stopped = InferenceAPIEmulator().start()
    url = stopped.url
    stopped.stop()  # the port is closed now: a refused connection, as from an API that is down
    with configured(stopped, url=url + "/models/{model_id}"):
        status, out, _ = check()

    assert status == 1
    assert "FAILED (connection_error)" in out and "nothing listens at that address" in out


def test_check__dns_failure__the_name_does_not_resolve(emulator):
    with configured(emulator, url="http://textclass-check.invalid/models/{model_id}"):
        _, out, _ = check()

    assert "FAILED (connection_error)" in out and "host name does not resolve" in out


def test_check__retired_host__the_router_url_and_no_call(emulator):
    with configured(emulator, url="https://api-inference.huggingface.co/models/{model_id}"):
        status, out, _ = check()

    assert status == 1
    assert "FAILED (retired_host)" in out
    assert "set the backend's API_URL to https://router.huggingface.co/hf-inference/models/" in out
    assert emulator.requests == []


def test_check__a_backend_that_refuses_its_options__configuration(emulator):
    with configured(emulator, MAX_BATCH_SIZE=0):
        _, out, _ = check()

    assert "FAILED (configuration)" in out and "MAX_BATCH_SIZE must be a positive number" in out
    assert "manage.py check" in out


def test_check__a_key_whose_entry_is_wrong__reported_as_failed_the_others_checked(emulator):
    models = {"broken": {"MODEL": SST2, "BACKEND": "gone"}, "sentiment": {"MODEL": SST2}}
    with configured(emulator, models):
        status, out, _ = check()

    assert status == 1
    assert "broken: not configured\n  FAILED (configuration): TEXTCLASS['MODELS']['broken']" in out
    assert out.splitlines()[-1] == "2 checked: 1 answered, 1 failed."


def test_check__the_token_never_appears(emulator):
    token = canary()
    echoed_label = [[{"label": "{authorization}", "score": 0.9}, {"label": "x", "score": 0.1}]]
    emulator.script(
        Reply.unauthorized(echo=True), Reply.forbidden(echo=True), Reply(200, echoed_label)
    )
    models = {"a": {"MODEL": SST2}, "b": {"MODEL": "acme/b"}, "c": {"MODEL": "acme/c"}}
    with configured(emulator, models):
        texts = check() + check("--json")

    assert emulator.requests[0].headers["authorization"] == f"Bearer {token}"  # it was sent
    assert all(token not in str(text) for text in texts)
    assert "***" in texts[1]


# --- bad arguments: one line, exit 2 --------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "../x"], "--model '../x'"),
        (["--model", "https://evil.example/"], "neither a model key"),
        (["--model", "sentimnet"], "not a model key"),
        (["--text", ""], "--text: must not be empty"),
        (["--text", "a\x00b"], "--text: must not contain NUL"),
    ],
)
def test_check__bad_arguments__exit_2_nothing_sent(emulator, args, words):
    with configured(emulator), pytest.raises(CommandError, match=words.replace(".", r"\.")) as info:
        call_command("textclass_check", *args, stdout=StringIO(), stderr=StringIO())

    assert info.value.returncode == 2
    assert emulator.requests == []


# --- as a deployment health check: the exit status of the real command line ---------------


def test_command_line__exit_0_when_every_model_answers_1_when_one_fails(emulator):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "TEXTCLASS_TEST_API_URL": emulator.url,
    }

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "django", "textclass_check", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    healthy = run()
    emulator.script(Reply.unavailable())
    asleep = run("--json")

    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.splitlines()[-1] == "1 checked: 1 answered, 0 failed."
    assert asleep.returncode == 1
    assert json.loads(asleep.stdout)["models"][0]["error"]["code"] == "http_503"
    assert asleep.stderr.strip().splitlines()[-1].endswith("1 of 1 failed: " + SST2 + ".")
