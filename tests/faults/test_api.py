"""The Inference API away, loading, rate-limiting, or failing on one text."""

from collections import defaultdict

import pytest
from django.conf import settings

from django_textclass.conf import app_settings
from django_textclass.models import ClassificationRequest, RequestEvent, Status
from django_textclass.testing import Reply
from tests.faults.audit import audit
from tests.faults.figures import Clock, Figures
from tests.faults.rig import assert_classified_once, texts
from tests.helpers import wait_for

pytestmark = pytest.mark.faults

#: Calls already on their way when an answer set a wait may still arrive this long after it
#: (16 calls out at once on a loaded machine): they are not calls made inside the wait.
IN_FLIGHT = 0.75


#: The most calls one worker of the rig has out at once: 2 processes x CALLS_IN_FLIGHT (4).
CALLS_OUT_AT_ONCE = 8


def _answers_lost_in_the_outage(emulator, clock):
    """The calls whose answers were lost when the API went away, and the keys of their texts.

    A text qualifies when the API answered it exactly twice, once before ``start()`` began
    (``starting``) and once after. The first may be logged after ``stop()`` ended: a handler
    thread that read the request from its socket is held up (the emulator's threads share the
    test's interpreter) and gets to log it only then, and its answer cannot leave any more.
    """
    answers = defaultdict(list)
    for call in emulator.requests:
        if call.model_id is not None and call.status == 200:
            for text in call.inputs:
                answers[call.model_id, text].append(call)
    starting = clock.marks["starting"]
    lost = {
        key: calls[0]
        for key, calls in answers.items()
        if len(calls) == 2 and calls[0].received_at < starting <= calls[1].received_at
    }
    return {id(call): call.received_at for call in lost.values()}, set(lost)


def old_retry_budget():
    """Seconds a text kept retrying before the pipeline learnt to tell an outage from its own
    failure: each attempt's longest backoff, for ``MAX_ATTEMPTS`` attempts."""
    return sum(
        min(app_settings.RETRY_BACKOFF_MAX, app_settings.RETRY_BACKOFF_BASE * 2**n)
        for n in range(app_settings.MAX_ATTEMPTS - 1)
    )


def test_api_unreachable_longer_than_the_old_retry_budget__nothing_fails(rig, figures):
    """The API's port refuses connections for five times the old retry budget (every text
    would have failed), mid-way through 2,000 texts; then it answers again."""
    outage = max(8.0, 5 * old_retry_budget())
    rig.emulator.latency = 0.05
    rig.worker()
    clock = Clock()
    accepted = rig.submit(texts(2000, 2000, tag="outage"))
    wait_for(
        lambda: rig.final() >= 300,
        timeout=60,
        interval=0.1,
        message="the worker to be under way",
        describe=rig.describe,
    )

    clock.mark("stopping")
    rig.emulator.stop()  # connection refused, from every worker process
    clock.mark("down")
    # The outage lasts its time; meanwhile nothing may fail.
    wait_for(
        lambda: _failed() or clock.since("down") >= outage,
        timeout=outage + 10,
        interval=0.2,
        message="the end of the outage",
    )
    assert not _failed(), "a text failed while the API was away"
    finished_during = rig.final()
    clock.mark("starting")  # no call can be received before: nothing listens
    rig.emulator.start()  # the same port
    clock.mark("back")
    rig.wait_all_final(len(accepted), timeout=120)
    clock.mark("final")
    rig.wait_signals_sent()

    report = audit(accepted)
    assert report.succeeded == len(accepted)
    attempts = set(ClassificationRequest.objects.values_list("attempts", flat=True))
    # Only the failures before the circuit opened spent attempts (CIRCUIT_FAILURES - 1
    # at most per row); every wait after spent none.
    assert max(attempts) <= settings.TEXTCLASS["CIRCUIT_FAILURES"], attempts
    # A call out when the API went away may have been answered on its side (the emulator logs
    # an answer before it writes it) and the answer lost on the way: its texts went again once
    # the API was back (at least once). Such a text has two answers, one logged before the API
    # came back and one after; and no more calls lose their answers than one worker
    # keeps out at once. Any other text answered twice is a fault of ours.
    lost_calls, lost = _answers_lost_in_the_outage(rig.emulator, clock)
    assert len(lost_calls) <= CALLS_OUT_AT_ONCE, lost_calls
    try:
        assert_classified_once(rig.emulator, except_for=lost)
    except AssertionError as exc:
        marks = ", ".join(f"{name} {at:.3f}" for name, at in clock.marks.items())
        raise AssertionError(f"{exc}\nthe scenario's marks: {marks}") from None
    waits = RequestEvent.objects.filter(kind=RequestEvent.Kind.WAIT, reason="circuit_open")
    assert waits.exists()  # the circuit did open
    figures(
        Figures(
            "API unreachable, then back",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            recovery_s=clock.between("back", "final"),
            recovery_from=f"API back after {outage:.0f} s (old retry budget "
            f"{old_retry_budget():.1f} s) to every text final",
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={
                "max_attempts": max(attempts),
                "circuit_open_waits": waits.count(),
                "final_when_it_went_down": finished_during,
            },
        ).count_calls(rig.emulator)
    )


def test_model_loading_503_for_a_while__every_worker_waits_and_nothing_is_spent(rig, figures):
    """The model answers 503 "loading" (estimated_time 2 s) for 8 s while 2,000 texts
    arrive; every call after the first 503s waits for the estimate, and asks the API to
    wait for the model."""
    window, estimate = 8.0, 2.0
    rig.emulator.latency = 0.05
    rig.worker()
    clock = Clock()
    ends = rig.emulator.answer_for(window, Reply.loading(estimated_time=estimate))
    accepted = rig.submit(texts(2000, 2000, tag="loading"))
    rig.wait_all_final(len(accepted), timeout=120)
    clock.mark("final")
    rig.wait_signals_sent()

    report = audit(accepted)
    assert report.succeeded == len(accepted)
    assert set(ClassificationRequest.objects.values_list("attempts", flat=True)) == {1}
    calls = rig.emulator.requests
    loading = [call for call in calls if call.status == 503]
    assert loading, "no call met the loading model"
    _no_call_inside_a_wait(calls, loading, estimate)
    after = [call for call in calls if call.received_at >= ends and call.status == 200]
    # Rows that met the 503 ask the API to wait for the model on their next call.
    assert any(call.headers.get("x-wait-for-model") == "true" for call in after)
    assert_classified_once(rig.emulator)
    figures(
        Figures(
            "model loading (503) for 8 s",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            recovery_s=clock.marks["final"] - ends,
            recovery_from="the model loaded to every text final",
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={"answered_503": len(loading)},
        ).count_calls(rig.emulator)
    )


def test_429_storm_with_two_workers__no_call_inside_a_window_and_nothing_spent(rig, figures):
    """Every call is answered 429 (Retry-After: 2) for 6 s while two workers (four
    processes) work through 2,000 texts."""
    window = 6.0
    rig.emulator.latency = 0.05
    rig.worker("first")
    rig.worker("second")
    clock = Clock()
    ends = rig.emulator.answer_for(window, Reply.rate_limited(retry_after=2))
    accepted = rig.submit(texts(2000, 2000, tag="storm"))
    rig.wait_all_final(len(accepted), timeout=120)
    clock.mark("final")
    rig.wait_signals_sent()

    report = audit(accepted)
    assert report.succeeded == len(accepted)
    assert set(ClassificationRequest.objects.values_list("attempts", flat=True)) == {1}
    calls = rig.emulator.requests
    limited = [call for call in calls if call.status == 429]
    assert limited, "no call met the rate limit"
    _no_call_inside_a_wait(calls, limited, 2.0)
    assert_classified_once(rig.emulator)
    figures(
        Figures(
            "429 storm for 6 s (Retry-After 2), two workers",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            recovery_s=clock.marks["final"] - ends,
            recovery_from="the storm's end to every text final",
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={"answered_429": len(limited)},
        ).count_calls(rig.emulator)
    )


def test_poison_texts_among_2000__each_fails_alone_and_the_rest_succeed_first_time(rig, figures):
    """Three texts the model fails on (HTTP 500, whatever the batch) among 2,000."""
    rig.emulator.latency = 0.05
    corpus = texts(2000, 2000, tag="poison")
    poisons = [corpus[n] for n in (100, 1000, 1900)]
    for text in poisons:
        rig.emulator.poison(text)
    rig.worker()
    clock = Clock()
    accepted = rig.submit(corpus)
    rig.wait_all_final(len(accepted), timeout=120)
    rig.wait_signals_sent()

    report = audit(accepted)
    rows = ClassificationRequest.objects.all()
    failed = rows.filter(status=Status.FAILED)
    assert sorted(failed.values_list("text", flat=True)) == sorted(poisons)
    assert set(failed.values_list("error_code", flat=True)) == {"retries_exhausted"}
    assert set(rows.filter(status=Status.SUCCEEDED).values_list("attempts", flat=True)) == {1}
    calls = rig.emulator.requests
    alone = [call for call in calls if call.status == 500 and len(call.inputs) == 1]
    assert len(alone) == len(poisons) * app_settings.MAX_ATTEMPTS  # its own attempts, alone
    # Each poisoned batch of 8: tried twice whole, then halved down to the poison (two
    # calls per halving), then the poison's own attempts alone.
    batch = settings.TEXTCLASS["BACKENDS"]["default"]["OPTIONS"]["MAX_BATCH_SIZE"]
    halvings = batch.bit_length() - 1
    extra = len(poisons) * (2 + 2 * halvings + app_settings.MAX_ATTEMPTS)
    assert len(calls) <= -(-len(corpus) // batch) + extra
    figures(
        Figures(
            "poison texts in batches",
            texts=len(accepted),
            unique_texts=rig.unique_texts(),
            total_s=clock.elapsed,
            audit=report.as_dict(),
            notes={"poisons": len(poisons), "answered_500": sum(c.status == 500 for c in calls)},
        ).count_calls(rig.emulator)
    )


def _failed():
    return ClassificationRequest.objects.filter(status=Status.FAILED).exists()


def _no_call_inside_a_wait(calls, refusals, seconds):
    """No call reached the API inside the wait an earlier refusal set (calls already on
    their way, up to :data:`IN_FLIGHT` after it, excepted)."""
    for refusal in refusals:
        inside = [
            call
            for call in calls
            if refusal.received_at + IN_FLIGHT
            < call.received_at
            < refusal.received_at + seconds - 0.05
        ]
        assert inside == [], (
            f"{len(inside)} call(s) inside the wait set by the answer at {refusal.received_at:.3f}"
        )
