"""Backend errors in the worker: what is retried, when, and what fails for good.

No broker and no worker: ``dispatch.send`` is replaced by a recorder (the one
publishing seam, ``sent``) and ``process()`` is called directly, as the task would.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from django_textclass import services
from django_textclass.exceptions import (
    PermanentBackendError,
    TextClassConfigurationError,
)
from django_textclass.models import ClassificationRequest, Status, text_hash
from django_textclass.types import LabelScore, Ranking
from tests.fakes import (
    SCRIPTED,
    rank,
    scripted_settings,
    textclass_settings,
)
from tests.services.helpers import (
    fresh,
    make_due,
    pks,
    scores_of,
    transient,
)

pytestmark = pytest.mark.django_db


# --- backend errors --------------------------------------------------------------------


def test_process__transient_error_reschedules_with_backoff(backend, sent):
    backend.script = [transient("HTTP 502 from http://api: bad gateway")]
    request = services.submit("a good day")
    before = timezone.now()

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.error_code == "http_502"
    assert "bad gateway" in row.error_message
    assert row.attempts == 1
    assert row.claim_token is None and row.lease_expires_at is None
    assert row.next_attempt_at >= before + timedelta(seconds=0.1)  # half of BASE * 2**0
    ids, countdown = sent.calls[0]
    assert ids == [request.pk]
    assert 0.1 <= countdown <= 0.2
    assert row.next_attempt_at <= timezone.now() + timedelta(seconds=countdown)
    assert scores_of(request) == []


def test_process__transient_error_sends_exactly_one_wakeup(backend, sent):
    backend.script = [transient()]
    request = services.submit("a good day")

    services.process([request.pk])

    assert sent.ids == [request.pk]


def test_process__retry_after_hint_is_a_floor(backend, sent):
    backend.script = [transient(code="http_429", retry_after=3.0)]
    request = services.submit("a good day")
    before = timezone.now()

    services.process([request.pk])

    _, countdown = sent.calls[0]
    assert countdown == 3.0
    assert fresh(request).next_attempt_at >= before + timedelta(seconds=3)


def test_process__retry_after_hint_is_capped(backend, sent):
    backend.script = [transient(code="http_429", retry_after=3600)]
    request = services.submit("a good day")

    services.process([request.pk])
    after = timezone.now()

    _, countdown = sent.calls[0]
    assert countdown == 5.0  # RETRY_HINT_MAX of the test settings
    assert fresh(request).next_attempt_at <= after + timedelta(seconds=5)


def test_process__after_a_503_the_next_call_waits_for_the_model(backend):
    backend.script = [transient("loading", code="http_503", retry_after=1.0, model_loading=True)]
    request = services.submit("a good day")

    services.process([request.pk])
    make_due(request)
    services.process([request.pk])

    assert [call.wait_for_model for call in backend.calls] == [False, True]
    row = fresh(request)
    assert row.status == Status.SUCCEEDED
    assert row.attempts == 1  # a loading model is not the text's fault: no attempt spent
    assert row.error_code == "" and row.error_message == ""


def test_process__after_another_transient_error_the_next_call_does_not_wait(backend):
    backend.script = [transient(code="http_502")]
    request = services.submit("a good day")

    services.process([request.pk])
    make_due(request)
    services.process([request.pk])

    assert [call.wait_for_model for call in backend.calls] == [False, False]


def test_process__model_loading_flag_makes_the_next_call_wait(backend):
    backend.script = [transient("warming up", code="model_loading", model_loading=True)]
    request = services.submit("a good day")

    services.process([request.pk])
    make_due(request)
    services.process([request.pk])

    assert [call.wait_for_model for call in backend.calls] == [False, True]


def test_process__a_text_failing_alone_runs_out_of_attempts(backend, sent):
    """The backend answers other texts in between: the failures are this text's own."""
    poison_failures = [transient(f"failure {n}", code="http_500") for n in range(1, 5)]
    backend.script = [step for failure in poison_failures for step in (failure, None)]
    request = services.submit("a good day")

    for n in range(3):
        services.process([request.pk])
        assert fresh(request).status == Status.PENDING
        services.process([services.submit(f"a healthy text {n}").pk])
        make_due(request)
    wakeups_before_last = len(sent.calls)
    services.process([request.pk])

    row = fresh(request)
    assert [call.texts for call in backend.calls].count(["a good day"]) == 4  # MAX_ATTEMPTS
    assert row.status == Status.FAILED
    assert row.error_code == "retries_exhausted"
    assert "4 attempt" in row.error_message
    assert "failure 4" in row.error_message
    assert row.attempts == 4
    assert row.finished_at is not None
    assert row.next_attempt_at is None and row.claim_token is None
    assert len(sent.calls) == wakeups_before_last  # no wake-up for a failed request


def test_process__max_attempts_one_fails_on_the_first_transient_error(backend, sent):
    backend.script = [transient("only try")]
    request = services.submit("a good day")

    with textclass_settings(MAX_ATTEMPTS=1):
        services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "retries_exhausted"
    assert sent.calls == []


def test_process__permanent_error_fails_at_once(backend, sent):
    backend.script = [
        PermanentBackendError("HTTP 404 from http://api (no such model)", code="http_404")
    ]
    request = services.submit("a good day")

    services.process([request.pk])
    services.process([request.pk])

    row = fresh(request)
    assert len(backend.calls) == 1
    assert row.status == Status.FAILED
    assert row.error_code == "http_404"
    assert "no such model" in row.error_message
    assert row.attempts == 1
    assert row.finished_at is not None and row.claim_token is None
    assert sent.calls == []
    assert scores_of(request) == []


def test_process__wrong_number_of_rankings_sends_the_texts_one_by_one(backend):
    backend.script = [[rank("only one")]]
    requests = services.submit(["one", "two"])

    services.process(pks(requests))

    assert [call.texts for call in backend.calls] == [["one", "two"], ["one"], ["two"]]
    for request in requests:
        row = fresh(request)
        assert row.status == Status.SUCCEEDED
        assert row.labels == rank(row.text).as_list()


def test_process__a_wrong_answer_for_one_text_fails_only_that_text(backend):
    backend.script = [[rank("only one")], [Ranking(())], None]
    requests = services.submit(["one", "two"])

    services.process(pks(requests))

    first, second = (fresh(request) for request in requests)
    assert first.status == Status.FAILED and first.error_code == "invalid_response"
    assert second.status == Status.SUCCEEDED


@pytest.mark.parametrize("status", [400, 413, 422])
def test_process__batch_refused_for_its_input_is_split(backend, status):
    refused = PermanentBackendError(f"HTTP {status}", code=f"http_{status}", status_code=status)
    too_long = PermanentBackendError("too long", code="http_422", status_code=422)
    backend.script = [refused, None, too_long]
    requests = services.submit(["fine", "far too long"])

    services.process(pks(requests))

    fine, long_one = (fresh(request) for request in requests)
    assert len(backend.calls) == 3
    assert fine.status == Status.SUCCEEDED
    assert long_one.status == Status.FAILED and long_one.error_code == "http_422"


def test_process__batch_refused_for_auth_is_not_split(backend):
    backend.script = [PermanentBackendError("HTTP 401", code="http_401", status_code=401)]
    requests = services.submit(["one", "two"])

    services.process(pks(requests))

    assert len(backend.calls) == 1
    assert {fresh(request).error_code for request in requests} == {"http_401"}


def test_process__empty_ranking_fails_as_invalid_response(backend):
    backend.script = [[Ranking(())]]
    request = services.submit("a good day")

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "invalid_response"


def test_process__unexpected_backend_exception_is_retried_then_fails(backend, sent):
    attempts = settings.TEXTCLASS["MAX_ATTEMPTS"]
    backend.script = [ZeroDivisionError("bug in a custom backend")] * attempts
    request = services.submit("a good day")

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.PENDING
    assert row.error_code == "backend_exception"
    assert "ZeroDivisionError" in row.error_message
    for _ in range(attempts - 1):
        ClassificationRequest.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        services.process([request.pk])
    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "retries_exhausted"
    assert len(backend.calls) == attempts


def test_process__label_longer_than_the_column_fails_as_invalid_response(backend, sent):
    backend.script = [[Ranking((LabelScore("x" * 201, 1.0),))]]
    request = services.submit("a good day")

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "invalid_response"


def test_process__configuration_error_from_the_backend_fails_the_requests(backend, sent):
    backend.script = [TextClassConfigurationError("TOKEN is not set")]
    request = services.submit("a good day")

    services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "configuration"
    assert "TOKEN is not set" in row.error_message
    assert len(backend.calls) == 1
    assert sent.calls == []


def test_process__misconfigured_backend_fails_the_requests(backend):
    request = services.submit("a good day")
    broken = {"default": {"BACKEND": SCRIPTED, "OPTIONS": {"NO_SUCH_OPTION": 1}}}

    with textclass_settings(BACKENDS=broken):
        services.process([request.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "configuration"
    assert "NO_SUCH_OPTION" in row.error_message
    assert backend.calls == []


def test_process__one_failing_group_does_not_stop_the_others(backend):
    backend.script = [PermanentBackendError("HTTP 400", code="http_400"), None]
    broken = services.submit("a good day", "acme/one")
    fine = services.submit("a bad day", "acme/two")

    services.process([broken.pk, fine.pk])

    assert fresh(broken).status == Status.FAILED
    assert fresh(fine).status == Status.SUCCEEDED


def test_process__a_failing_batch_does_not_stop_the_next_batch(backend):
    backend.script = [transient(), None]
    requests = services.submit(["one", "two", "three"])

    with scripted_settings({"MAX_BATCH_SIZE": 2}):
        services.process(pks(requests))

    assert [fresh(request).status for request in requests] == [
        Status.PENDING,
        Status.PENDING,
        Status.SUCCEEDED,
    ]


# --- retry_delay -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "backoff"),
    [(0, 0.2), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (30, 1.0)],
)
def test_retry_delay__backoff_grows_and_is_capped(monkeypatch, attempts, backoff):
    bounds = []

    def uniform(low, high):
        bounds.append((low, high))
        return high

    monkeypatch.setattr(services.settling.random, "uniform", uniform)

    assert services.retry_delay(attempts) == pytest.approx(backoff)
    assert bounds == [(pytest.approx(backoff / 2), pytest.approx(backoff))]


def test_retry_delay__jitter_stays_within_half_and_full():
    delays = [services.retry_delay(3) for _ in range(500)]

    assert all(0.4 <= delay <= 0.8 for delay in delays)
    assert len(set(delays)) > 1  # it is jittered
    assert min(delays) < 0.5 and max(delays) > 0.7


def test_retry_delay__hint_is_a_floor():
    assert services.retry_delay(1, hint=3) == 3.0
    assert 0.5 <= services.retry_delay(4, hint=0.01) <= 1.0  # a small hint does not shorten


def test_retry_delay__hint_is_capped():
    assert services.retry_delay(1, hint=3600) == 5.0
    with textclass_settings(RETRY_HINT_MAX=2.5):
        assert services.retry_delay(1, hint=3600) == 2.5


# --- a model id the row should never have held ------------------------------------------

HOSTILE_MODEL_IDS = ["../../../x?y#z", "a/../b", "x?y", "https://evil.example/m", "a b", ""]


def stored_with_model(model_id, text="a good day"):
    """A row written with the ORM, as a fixture or a bulk import would: submit() never saw it."""
    return ClassificationRequest.objects.create(
        model_id=model_id,
        text=text,
        text_hash=text_hash(text),
        backend="default",
    )


@pytest.mark.parametrize("model_id", HOSTILE_MODEL_IDS)
def test_process__stored_hostile_model_id__failed_for_good_and_never_sent(backend, model_id):
    request = stored_with_model(model_id)
    fine = services.submit("a bad day")

    services.process([request.pk, fine.pk])

    row = fresh(request)
    assert row.status == Status.FAILED
    assert row.error_code == "invalid_model_id"
    assert "nothing was sent" in row.error_message
    assert row.attempts == 1
    assert fresh(fine).status == Status.SUCCEEDED
    assert [call.model_id for call in backend.calls] == [fine.model_id]


@pytest.mark.parametrize("model_id", HOSTILE_MODEL_IDS[:3])
def test_process__stored_hostile_model_id__the_http_backend_never_calls(emulator, model_id):
    # Through the real backend and a real server: once, the stored id reached the URL
    # (POST /x?y on the API host, with the site's token).
    request = stored_with_model(model_id)
    real = {
        "default": {
            "BACKEND": "django_textclass.backends.huggingface.Backend",
            "OPTIONS": {"API_URL": emulator.url + "/models/{model_id}", "TOKEN": "hf_x"},
        }
    }

    with textclass_settings(BACKENDS=real):
        services.process([request.pk])

    assert fresh(request).error_code == "invalid_model_id"
    assert emulator.requests == []
