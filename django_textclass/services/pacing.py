"""Backend-wide pacing: rate limits, models that load, and the circuit breaker of an outage.

Every worker process reads the same rows (:class:`~django_textclass.models.BackendPace`)
before each call, so what one of them learns holds for all, on every host:

* **A rate limit** (429, with its ``Retry-After`` or ``RateLimit`` reset): nobody calls the
  backend again before the time it gave (``RATE_LIMIT_WAIT`` when it gave none).
* **A model that loads** (503 with ``estimated_time``): nobody calls that model before then.
* **An outage** (``CIRCUIT_FAILURES`` calls in a row that failed with a connection error, a
  timeout or a 5xx, from any worker): the circuit opens and nobody calls the backend for
  ``CIRCUIT_OPEN_SECONDS``, twice as long after each opening in a row (up to
  ``CIRCUIT_OPEN_MAX``). Then one worker wins the right to a probe call (half open): a success
  closes the circuit, a failure opens it again.

Rows claimed while a backend must wait are handed back without spending an attempt
(:func:`django_textclass.services.settling.hand_back`). This module is the only writer of the
pacing rows; each write is one guarded ``UPDATE``, so two workers never both probe.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from django_textclass.conf import app_settings
from django_textclass.models import BackendPace

logger = logging.getLogger("django_textclass.pacing")

Circuit = BackendPace.Circuit
#: The whole backend's row has no model id.
WHOLE_BACKEND = ""
#: How long a probe call may take before another worker may probe instead.
PROBE_SECONDS = 60
#: While a probe is out, the others look again this often (it usually takes one call).
PROBE_RECHECK_SECONDS = 2


@dataclass(frozen=True)
class Gate:
    """What :func:`gate` decided for one call.

    Attributes:
        wait_until: None if the call may go now, else the time before which it must not.
        reason: why it must wait (``rate_limited``, ``model_loading``, ``circuit_open``).
        probe: True if this caller holds the half-open circuit's one probe call.
        clean: True if the backend had no failure in a row when read, so a success has
            nothing to reset (and writes nothing).
        batch_limit: the most texts per call the endpoint of this model accepts, as learnt
            from its refusals (:func:`learn_batch_limit`); None if it never refused one.
    """

    wait_until: object = None
    reason: str = ""
    probe: bool = False
    clean: bool = False
    batch_limit: int = None


def _rows(alias, model_id):
    return BackendPace.objects.filter(backend=alias, model_id__in=[WHOLE_BACKEND, model_id])


def _row(alias, model_id=WHOLE_BACKEND):
    """The pacing row of a backend (or of one model), created on first need."""
    row, _ = BackendPace.objects.get_or_create(backend=alias, model_id=model_id)
    return row


def gate(alias, model_id, *, now=None):
    """May a call to ``model_id`` on backend ``alias`` go now? One indexed read, usually.

    An open circuit whose wait is over is moved to half open by exactly one caller, which
    gets ``probe=True`` and makes the probe call; the others wait for its outcome.
    """
    now = now or timezone.now()
    waits = []
    whole = None
    batch_limit = None
    for row in _rows(alias, model_id):
        if row.model_id == WHOLE_BACKEND:
            whole = row
        else:
            batch_limit = row.batch_limit
        if row.not_before is not None and row.not_before > now:
            waits.append((row.not_before, row.reason))
    if waits:
        until, reason = max(waits, key=lambda wait: wait[0])
        return Gate(until, reason, batch_limit=batch_limit)
    if whole is None or whole.circuit == Circuit.CLOSED:
        return Gate(clean=whole is None or whole.failures == 0, batch_limit=batch_limit)
    # Open and its wait is over, or half open and its probe is overdue: one caller probes.
    probe_until = now + timedelta(seconds=PROBE_SECONDS)
    won = (
        BackendPace.objects.filter(pk=whole.pk)
        .filter(
            Q(circuit=Circuit.OPEN) | Q(circuit=Circuit.HALF_OPEN, probe_until__lte=now),
            Q(not_before__isnull=True) | Q(not_before__lte=now),
        )
        .update(circuit=Circuit.HALF_OPEN, probe_until=probe_until)
    )
    if won:
        logger.info("Backend %r: circuit half open; this worker sends the probe call", alias)
        return Gate(probe=True, batch_limit=batch_limit)
    whole.refresh_from_db()
    return Gate(_wait_for_probe(whole, now), "circuit_open", batch_limit=batch_limit)


def _wait_for_probe(row, now):
    """When to look again while another worker's probe is out (or the circuit is open)."""
    if row.circuit == Circuit.OPEN and row.not_before is not None and row.not_before > now:
        return row.not_before
    recheck = now + timedelta(seconds=PROBE_RECHECK_SECONDS)
    return min(row.probe_until, recheck) if row.probe_until is not None else recheck


#: Seconds per unit of a ``RATE_LIMIT`` such as ``"300/minute"``.
RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600}


def parse_rate(value):
    """``"300/minute"`` as ``(300, 60)``; None stays None.

    Raises:
        ValueError: for anything else (the message says what is expected).
    """
    if value is None:
        return None
    count, _, unit = str(value).partition("/")
    if not count.strip().isdigit() or int(count) < 1 or unit.strip() not in RATE_UNITS:
        raise ValueError(
            f"RATE_LIMIT must look like '300/minute' (per second, minute or hour), not {value!r}"
        )
    return int(count), RATE_UNITS[unit.strip()]


def take_call(alias, rate, *, now=None):
    """Count one call against the backend's own ``RATE_LIMIT``, shared by every worker.

    A fixed window: the first call of a window starts it, and at most ``rate[0]`` calls go
    in each. One guarded ``UPDATE`` per call decides, so the limit holds across processes
    and hosts (Celery's own ``rate_limit`` is per worker).

    Returns:
        None if the call may go, else the start of the next window (wait until then).
    """
    limit, seconds = rate
    now = now or timezone.now()
    window = datetime.fromtimestamp(now.timestamp() // seconds * seconds, tz=dt_timezone.utc)
    row = _row(alias)
    rows = BackendPace.objects.filter(pk=row.pk)
    if rows.filter(~Q(window_start=window) | Q(window_start__isnull=True)).update(
        window_start=window, window_calls=1
    ) or rows.filter(window_start=window, window_calls__lt=limit).update(
        window_calls=F("window_calls") + 1
    ):
        return None
    return window + timedelta(seconds=seconds)


def rate_limited(alias, hint, *, now=None):
    """A 429: no call to the backend before ``now + hint`` (``RATE_LIMIT_WAIT`` without one)."""
    return _wait(alias, WHOLE_BACKEND, hint, app_settings.RATE_LIMIT_WAIT, "rate_limited", now)


def model_loading(alias, model_id, hint, *, now=None):
    """A 503 while the model loads: no call to that model before ``now + hint``."""
    return _wait(alias, model_id, hint, app_settings.RATE_LIMIT_WAIT, "model_loading", now)


def _wait(alias, model_id, hint, default, reason, now):
    now = now or timezone.now()
    seconds = min(float(hint), app_settings.RETRY_HINT_MAX) if hint is not None else default
    until = now + timedelta(seconds=seconds)
    row = _row(alias, model_id)
    # A shorter wait learnt later never cuts a longer one short (NULL counts as no wait).
    until_value = Value(until, output_field=DateTimeField())
    BackendPace.objects.filter(pk=row.pk).update(
        not_before=Greatest(Coalesce("not_before", until_value), until_value),
        reason=reason,
    )
    logger.warning(
        "Backend %r%s: %s; no call before %s",
        alias,
        f" model {model_id!r}" if model_id else "",
        reason,
        until.isoformat(),
    )
    return until


def failed(alias, code, *, probe=False, now=None):
    """A call failed as an outage would (connection error, timeout, 5xx).

    Returns:
        The time before which nobody calls again if the circuit is open now (this failure
        opened it, or it was the probe), else None: the failure is the text's own business.
    """
    now = now or timezone.now()
    row = _row(alias)
    BackendPace.objects.filter(pk=row.pk).update(failures=F("failures") + 1, last_error=code[:64])
    row.refresh_from_db()
    if not probe and row.circuit == Circuit.CLOSED and row.failures < app_settings.CIRCUIT_FAILURES:
        return None
    if not probe and row.circuit != Circuit.CLOSED:
        # Opened by another worker meanwhile (or its probe is out): wait, as everyone does.
        return _wait_for_probe(row, now)
    seconds = min(app_settings.CIRCUIT_OPEN_MAX, app_settings.CIRCUIT_OPEN_SECONDS * 2**row.opened)
    until = now + timedelta(seconds=seconds)
    expected = Circuit.HALF_OPEN if probe else Circuit.CLOSED
    opened = BackendPace.objects.filter(pk=row.pk, circuit=expected).update(
        circuit=Circuit.OPEN,
        not_before=until,
        reason="circuit_open",
        probe_until=None,
        opened=F("opened") + 1,
    )
    if opened:
        logger.error(
            "Backend %r: circuit open after %d failure(s) in a row (last: %s); no call before %s",
            alias,
            row.failures,
            code,
            until.isoformat(),
        )
        return until
    row.refresh_from_db()  # another worker opened it first
    return _wait_for_probe(row, now)


def succeeded(alias, gate):
    """A call got an answer: the failures in a row end, a probe closes the circuit.

    ``gate`` is what :func:`gate` said before the call; a clean one writes nothing.
    """
    if gate.clean:
        return
    updated = (
        BackendPace.objects.filter(backend=alias, model_id=WHOLE_BACKEND)
        .filter(Q(failures__gt=0) | ~Q(circuit=Circuit.CLOSED))
        .update(
            failures=0,
            opened=0,
            circuit=Circuit.CLOSED,
            probe_until=None,
            # The open circuit's own wait ends with it; a rate limit's does not.
            not_before=Case(When(reason="circuit_open", then=None), default=F("not_before")),
        )
    )
    if updated and gate.probe:
        logger.info("Backend %r: the probe call succeeded; circuit closed", alias)


def learn_batch_limit(alias, model_id, size):
    """The endpoint refused a batch as too large: from now on, at most ``size`` texts per call.

    Kept per backend and model in the database, so every worker sends batches of the size
    that works instead of paying for the refusal again; it only ever shrinks (an operator's
    reset in the admin forgets it).
    """
    row = _row(alias, model_id)
    updated = (
        BackendPace.objects.filter(pk=row.pk)
        .filter(Q(batch_limit__isnull=True) | Q(batch_limit__gt=size))
        .update(batch_limit=size)
    )
    if updated:
        logger.warning(
            "Backend %r model %r refused a batch as too large; at most %d texts per "
            "call from now on",
            alias,
            model_id,
            size,
        )
    return size


def reset(pks):
    """End the waits, close the circuits, forget the batch limits of these rows (admin action)."""
    updated = BackendPace.objects.filter(pk__in=list(pks)).update(
        not_before=None,
        reason="",
        circuit=Circuit.CLOSED,
        failures=0,
        opened=0,
        probe_until=None,
        batch_limit=None,
        window_start=None,
        window_calls=0,
    )
    if updated:
        logger.warning("%d pacing state(s) reset by hand", updated)
    return updated


def states():
    """Every pacing row, for the admin, the statistics API and logs (backend, model order)."""
    return list(BackendPace.objects.order_by("backend", "model_id"))
