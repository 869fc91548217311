"""Backend-wide pacing: waits every worker honours, and the circuit breaker of an outage."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_textclass.models import BackendPace
from django_textclass.services import pacing
from tests.fakes import textclass_settings

pytestmark = pytest.mark.django_db

ALIAS = "default"
MODEL = "acme/sentiment"


def whole():
    return BackendPace.objects.get(backend=ALIAS, model_id="")


def open_circuit(now):
    """Fail as many calls in a row as it takes to open the circuit; return its end."""
    until = None
    for _ in range(3):  # CIRCUIT_FAILURES of the test settings
        until = pacing.failed(ALIAS, "http_502", now=now)
    return until


def test_gate__a_backend_never_paced_lets_calls_go():
    gate = pacing.gate(ALIAS, MODEL)

    assert gate == pacing.Gate(clean=True)


def test_rate_limited__no_call_to_any_model_before_the_hint():
    now = timezone.now()

    until = pacing.rate_limited(ALIAS, 3.0, now=now)

    assert until == now + timedelta(seconds=3)
    for model in (MODEL, "acme/other"):
        gate = pacing.gate(ALIAS, model, now=now + timedelta(seconds=2.9))
        assert (gate.wait_until, gate.reason) == (until, "rate_limited")
    assert pacing.gate(ALIAS, MODEL, now=now + timedelta(seconds=3)).wait_until is None
    assert pacing.gate("other", MODEL, now=now).wait_until is None  # another backend


def test_rate_limited__without_a_hint_waits_rate_limit_wait_and_a_hint_is_capped():
    now = timezone.now()

    assert pacing.rate_limited(ALIAS, None, now=now) == now + timedelta(seconds=1)  # test settings
    with textclass_settings(RETRY_HINT_MAX=5.0):
        assert pacing.rate_limited("other", 3600, now=now) == now + timedelta(seconds=5)


def test_rate_limited__a_shorter_wait_never_cuts_a_longer_one():
    now = timezone.now()
    longer = pacing.rate_limited(ALIAS, 4.0, now=now)

    pacing.rate_limited(ALIAS, 1.0, now=now)

    assert whole().not_before == longer


def test_model_loading__waits_for_that_model_only():
    now = timezone.now()

    until = pacing.model_loading(ALIAS, MODEL, 2.0, now=now)

    gate = pacing.gate(ALIAS, MODEL, now=now)
    assert (gate.wait_until, gate.reason) == (until, "model_loading")
    assert pacing.gate(ALIAS, "acme/other", now=now).wait_until is None


def test_failed__below_the_threshold_the_failure_is_the_texts():
    now = timezone.now()

    assert pacing.failed(ALIAS, "timeout", now=now) is None
    assert pacing.failed(ALIAS, "timeout", now=now) is None

    row = whole()
    assert (row.circuit, row.failures, row.last_error) == ("closed", 2, "timeout")
    assert pacing.gate(ALIAS, MODEL, now=now) == pacing.Gate()  # goes, but not clean


def test_failed__the_threshold_opens_the_circuit_for_every_worker():
    now = timezone.now()

    until = open_circuit(now)

    assert until == now + timedelta(seconds=1)  # CIRCUIT_OPEN_SECONDS of the test settings
    row = whole()
    assert (row.circuit, row.reason, row.opened) == ("open", "circuit_open", 1)
    gate = pacing.gate(ALIAS, MODEL, now=now)
    assert (gate.wait_until, gate.reason) == (until, "circuit_open")


def test_open_circuit__after_its_wait_exactly_one_caller_probes():
    now = timezone.now()
    until = open_circuit(now)

    first = pacing.gate(ALIAS, MODEL, now=until)
    second = pacing.gate(ALIAS, MODEL, now=until)

    assert first.probe and first.wait_until is None
    assert not second.probe and second.reason == "circuit_open"
    # The others look again soon: a probe usually takes one call.
    assert second.wait_until == until + timedelta(seconds=pacing.PROBE_RECHECK_SECONDS)
    assert whole().circuit == "half_open"


def test_probe__success_closes_the_circuit():
    now = timezone.now()
    probe = pacing.gate(ALIAS, MODEL, now=open_circuit(now))

    pacing.succeeded(ALIAS, probe)

    row = whole()
    assert (row.circuit, row.failures, row.opened, row.probe_until) == ("closed", 0, 0, None)
    assert pacing.gate(ALIAS, MODEL) == pacing.Gate(clean=True)


def test_probe__failure_opens_it_again_twice_as_long_up_to_the_cap():
    now = timezone.now()
    until = open_circuit(now)
    waits = []
    for _ in range(4):
        probe = pacing.gate(ALIAS, MODEL, now=until)
        assert probe.probe
        new_until = pacing.failed(ALIAS, "connection_error", probe=True, now=until)
        waits.append((new_until - until).total_seconds())
        until = new_until

    assert waits == [2.0, 4.0, 4.0, 4.0]  # CIRCUIT_OPEN_SECONDS 1 doubling, CIRCUIT_OPEN_MAX 4
    assert whole().circuit == "open"


def test_probe__a_probe_that_never_reported_back_is_taken_over():
    now = timezone.now()
    until = open_circuit(now)
    assert pacing.gate(ALIAS, MODEL, now=until).probe  # this probe's worker then dies

    later = until + timedelta(seconds=pacing.PROBE_SECONDS)
    assert pacing.gate(ALIAS, MODEL, now=later).probe


def test_failed__while_open_a_late_failure_waits_with_everyone():
    now = timezone.now()
    until = open_circuit(now)

    # A call that was already in flight when the circuit opened fails afterwards.
    assert pacing.failed(ALIAS, "timeout", now=now) == until
    assert whole().opened == 1


def test_succeeded__after_a_clean_gate_writes_nothing():
    gate = pacing.gate(ALIAS, MODEL)

    with CaptureQueriesContext(connection) as queries:
        pacing.succeeded(ALIAS, gate)

    assert len(queries) == 0


def test_succeeded__ends_a_run_of_failures():
    pacing.failed(ALIAS, "timeout")
    pacing.failed(ALIAS, "timeout")

    pacing.succeeded(ALIAS, pacing.gate(ALIAS, MODEL))

    assert whole().failures == 0
    assert pacing.failed(ALIAS, "timeout") is None  # counting starts again


def test_states__lists_every_row_for_the_admin_and_the_api():
    pacing.rate_limited(ALIAS, 1.0)
    pacing.model_loading(ALIAS, MODEL, 1.0)

    assert [(row.backend, row.model_id) for row in pacing.states()] == [
        (ALIAS, ""),
        (ALIAS, MODEL),
    ]


# --- the backend's own RATE_LIMIT, shared by every worker --------------------------------


@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("300/minute", (300, 60)),
        ("5/second", (5, 1)),
        (" 10 / hour ", (10, 3600)),
        (None, None),
    ],
)
def test_parse_rate(value, rate):
    assert pacing.parse_rate(value) == rate


@pytest.mark.parametrize("value", ["300", "0/minute", "-1/minute", "ten/minute", "5/day", 5])
def test_parse_rate__refuses_anything_else(value):
    with pytest.raises(ValueError, match="RATE_LIMIT must look like '300/minute'"):
        pacing.parse_rate(value)


def test_take_call__at_most_the_limit_per_window_then_the_next_window():
    start = datetime(2026, 12, 2, 10, 0, 5, tzinfo=dt_timezone.utc)

    taken = [pacing.take_call(ALIAS, (3, 60), now=start + timedelta(seconds=n)) for n in range(4)]

    next_window = datetime(2026, 12, 2, 10, 1, tzinfo=dt_timezone.utc)
    assert taken == [None, None, None, next_window]
    assert pacing.take_call(ALIAS, (3, 60), now=next_window) is None  # a new window
    assert whole().window_calls == 1
