"""One worker task keeps several calls out at once, and fills them with waiting work."""

import pytest
from django.db import connection

import django_textclass
from django_textclass.models import Status
from tests.faults.audit import audit
from tests.integration.helpers import MODEL, finished

pytestmark = pytest.mark.integration


def test_calls_in_flight__one_process_keeps_several_calls_out(worker, emulator):
    """64 texts, 8 calls of 8 (the suite's MAX_BATCH_SIZE); two processes, CALLS_IN_FLIGHT 4."""
    if connection.vendor == "sqlite":
        pytest.skip("on SQLite a task sends its calls one at a time")
    emulator.latency = 0.5
    requests = django_textclass.classify([f"review {n}" for n in range(64)], model=MODEL)

    rows = finished(*requests, timeout=60)

    audit(rows)
    assert {row.status for row in rows} == {Status.SUCCEEDED}
    calls = emulator.requests
    assert len(calls) == 8  # full calls: a task took its message's rows and the others'
    # Two processes with one call each would overlap two calls at most; here more calls
    # were received while the first was still out.
    first = calls[0].received_at
    assert sum(call.received_at < first + emulator.latency * 0.8 for call in calls) >= 3
