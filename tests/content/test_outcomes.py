"""Signals and threshold rules: once per result, after commit, never breaking the pipeline.

The worker's body (``services.process``) runs in-process against the scripted
backend; on-commit callbacks are captured and run as a commit would run them.
"""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from django_textclass import services
from django_textclass.content import rules
from django_textclass.exceptions import PermanentBackendError, TransientBackendError
from django_textclass.models import ClassificationRequest, Notification, RuleFiring, Status
from django_textclass.services import outcomes
from django_textclass.signals import classification_succeeded
from tests.content.helpers import OTHER, SENTIMENT, requests_of
from tests.fakes import rank, textclass_settings
from tests.testapp.models import Comment, SignalLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(backend, sent, django_capture_on_commit_callbacks):
    """``run(ids=None)``: process (all pending) requests, then run the commit callbacks."""

    def _run(ids=None):
        with django_capture_on_commit_callbacks(execute=True):
            ids = ids or list(
                ClassificationRequest.objects.filter(status="pending").values_list("pk", flat=True)
            )
            return services.process(ids)

    return _run


@pytest.fixture
def comment(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return Comment.objects.create(title="a title", body="bad service")


def logs(kind):
    return list(SignalLog.objects.filter(kind=kind).order_by("pk"))


def test_success__one_signal_per_result_with_its_arguments(comment, run):
    run()

    rows = requests_of(comment)
    received = logs("succeeded")
    assert sorted(log.request_uuid for log in received) == sorted(r.uuid for r in rows)
    assert all(log.has_source and log.object_id == str(comment.pk) for log in received)
    body = next(r for r in rows if r.source_field == "body" and r.model_id == SENTIMENT)
    assert next(log for log in received if log.request_uuid == body.uuid).label == "NEGATIVE"


def test_success__signal_only_after_commit(comment, backend, sent):
    ids = [r.pk for r in requests_of(comment)]

    services.process(ids)  # the test's transaction never commits

    assert all(r.status == Status.SUCCEEDED for r in requests_of(comment))
    assert logs("succeeded") == []
    assert not RuleFiring.objects.exists()


def test_rules__fire_once_and_are_recorded(comment, run):
    run()

    body = next(
        r for r in requests_of(comment) if r.source_field == "body" and r.model_id == SENTIMENT
    )
    firings = {f.rule: f for f in RuleFiring.objects.all()}
    assert set(firings) == {"hide negative", "explodes"}  # only SENTIMENT x body is watched
    hide = firings["hide negative"]
    assert (hide.request_id, hide.request_uuid, hide.object_id) == (
        body.pk,
        body.uuid,
        str(comment.pk),
    )
    assert (hide.label, hide.min_score, hide.outcome) == ("NEGATIVE", 0.9, "ok")
    assert hide.score == pytest.approx(rank("bad service").top.score)
    assert hide.action == "tests.testapp.actions.hide"
    comment.refresh_from_db()
    assert comment.hidden is True


def test_rules__a_failing_action_is_recorded_rolled_back_and_harmless(comment, run, caplog):
    run()

    firing = RuleFiring.objects.get(rule="explodes")
    assert firing.outcome == "error"
    assert firing.error == "RuntimeError: the action broke"
    assert firing.action == "tests.testapp.actions.explode"
    comment.refresh_from_db()
    assert comment.title == "a title"  # the action's own write was rolled back
    assert "Rule 'explodes' failed" in caplog.text
    # Nothing the failing action did classified anything again.
    assert len(requests_of(comment)) == 4


def test_rules__the_database_lost_before_a_firing_is_finished__the_sweep_runs_it_again(
    comment, run, monkeypatch
):
    """Found by the fault suite (database connections terminated under the worker): the
    firing was stored, the connection broke before its outcome was, and the signal sent
    again found the firing already there: the action was never run to an end."""
    save = RuleFiring.save

    def cut_off(self, *args, **kwargs):
        if kwargs.get("update_fields") and self.rule == "hide negative" and not cut_off.done:
            cut_off.done = True
            raise OperationalError("terminating connection due to administrator command")
        return save(self, *args, **kwargs)

    cut_off.done = False
    monkeypatch.setattr(RuleFiring, "save", cut_off)

    run()

    assert cut_off.done
    assert not RuleFiring.objects.filter(rule="hide negative").exists()  # nothing half-done
    comment.refresh_from_db()
    assert comment.hidden is False  # the action's write went with it
    later = timezone.now() + timedelta(seconds=outcomes.DELIVERY_SECONDS + 1)
    assert outcomes.deliver_overdue(now=later) == 1
    hide = RuleFiring.objects.get(rule="hide negative")
    assert hide.outcome == "ok"
    assert RuleFiring.objects.get(rule="explodes").outcome == "error"  # fired once
    comment.refresh_from_db()
    assert comment.hidden is True


def test_rules__below_the_threshold_nothing_fires(sent, run, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Comment.objects.create(title="t", body="a good day")  # POSITIVE

    run()

    assert not RuleFiring.objects.exists()
    assert len(logs("succeeded")) == 4


def test_notified_twice__rules_still_fire_once(comment, run):
    run()
    body = next(
        r for r in requests_of(comment) if r.source_field == "body" and r.model_id == SENTIMENT
    )

    outcomes.notify_now({"succeeded": [body.pk]})

    assert RuleFiring.objects.count() == 2


def test_task_runs_twice__second_run_claims_nothing_and_sends_nothing(comment, run):
    ids = [r.pk for r in requests_of(comment)]
    assert run(ids) == 4

    assert run(ids) == 0

    assert len(logs("succeeded")) == 4
    assert RuleFiring.objects.count() == 2


def test_run_that_lost_its_lease__its_late_answer_sends_nothing(comment, run):
    body = next(r for r in requests_of(comment) if r.source_field == "body" and r.model_id == OTHER)
    token, (claimed,) = services.claim([body.pk])
    ClassificationRequest.objects.filter(pk=body.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    services.sweep()  # hands it back; another run completes it
    run([body.pk])

    late = services.complete(token, [(claimed, rank(claimed.text))])

    assert late == 0
    # Once, by the run that completed it (which also took the other waiting text of its model).
    assert [log.request_uuid for log in logs("succeeded")].count(body.uuid) == 1


def test_permanent_failure__failed_signal_with_code(comment, backend, run):
    error = PermanentBackendError("HTTP 401: bad token", code="http_401")
    backend.script = [error, error]  # one call per model

    run()

    failed = logs("failed")
    assert len(failed) == 4
    assert {log.error_code for log in failed} == {"http_401"}
    assert logs("succeeded") == []
    assert not RuleFiring.objects.exists()


def test_retries_exhausted__failed_signal_once(comment, backend, run):
    with textclass_settings(MAX_ATTEMPTS=1):
        backend.script = [TransientBackendError("HTTP 503", code="http_503")] * 2
        run()

    assert {log.error_code for log in logs("failed")} == {"retries_exhausted"}
    assert len(logs("failed")) == 4


def test_lease_expired_without_attempts__sweep_sends_failed_signal(
    comment, sent, django_capture_on_commit_callbacks
):
    ids = [r.pk for r in requests_of(comment)]
    with textclass_settings(MAX_ATTEMPTS=1):
        services.claim(ids)
        ClassificationRequest.objects.filter(pk__in=ids).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        with django_capture_on_commit_callbacks(execute=True):
            assert services.sweep()["failed"] == 4

    assert {log.error_code for log in logs("failed")} == {"lease_expired"}


def test_plain_classify__signal_without_source(run, sent):
    request = services.submit("nice", model=SENTIMENT)

    run([request.pk])

    (log,) = logs("succeeded")
    assert (log.request_uuid, log.has_source, log.object_id) == (request.uuid, False, "")


def test_source_deleted_before_the_result__signal_without_source_and_no_rules(
    comment, backend, sent, django_capture_on_commit_callbacks
):
    ids = [r.pk for r in requests_of(comment)]
    token, rows = services.claim(ids)  # running: deleting the comment does not cancel them
    Comment.objects.filter(pk=comment.pk).delete()

    with django_capture_on_commit_callbacks(execute=True):
        services.complete(token, [(row, rank(row.text)) for row in rows])

    assert len(logs("succeeded")) == 4
    assert {log.has_source for log in logs("succeeded")} == {False}
    assert not RuleFiring.objects.exists()


def test_a_raising_receiver__logged_and_the_others_still_run(comment, run, caplog):
    def broken(sender, **kwargs):
        raise ValueError("receiver bug")

    classification_succeeded.connect(broken, dispatch_uid="broken-receiver")
    try:
        run()
    finally:
        classification_succeeded.disconnect(dispatch_uid="broken-receiver")

    assert len(logs("succeeded")) == 4
    assert "receiver bug" in caplog.text
    assert all(r.status == Status.SUCCEEDED for r in requests_of(comment))


# --- the outbox: a result is never stored without its notification ------------------------


def test_outbox__written_with_the_result_and_deleted_once_sent(
    comment, backend, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.process([r.pk for r in requests_of(comment)])

        # Committed with the results, not yet sent.
        assert Notification.objects.count() == 4 and logs("succeeded") == []
    for callback in callbacks:
        callback()

    assert Notification.objects.count() == 0
    assert len(logs("succeeded")) == 4


def test_outbox__a_process_that_died_after_its_commit_is_made_up_for_by_the_sweep(
    comment, backend, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        services.process([r.pk for r in requests_of(comment)])  # ... and the process dies here
    assert RuleFiring.objects.count() == 0

    assert outcomes.deliver_overdue() == 0  # its writer still has DELIVERY_SECONDS
    later = timezone.now() + timedelta(seconds=outcomes.DELIVERY_SECONDS + 1)
    assert outcomes.deliver_overdue(now=later) == 4

    assert len(logs("succeeded")) == 4
    assert {f.rule for f in RuleFiring.objects.all()} == {"hide negative", "explodes"}
    assert outcomes.deliver_overdue(now=later) == 0  # sent once, and gone


def test_outbox__sent_twice_the_rules_still_fire_once(comment, run):
    run()
    firings = RuleFiring.objects.count()
    body = next(
        r for r in requests_of(comment) if r.source_field == "body" and r.model_id == SENTIMENT
    )
    # As if the writer crashed after sending, before deleting: the sweep sends it again.
    Notification.objects.create(request=body, outcome="succeeded", due_at=timezone.now())

    assert outcomes.deliver_overdue(now=timezone.now() + timedelta(seconds=1)) == 1

    assert RuleFiring.objects.count() == firings  # a unique constraint, not luck
    assert len([log for log in logs("succeeded") if log.request_uuid == body.uuid]) == 2


def test_outbox__a_receiver_cut_off_from_the_database_is_sent_again_by_the_sweep(
    comment, run, monkeypatch
):
    """Found by the fault suite (database connections terminated under the worker): the
    rules' receiver failed on the broken connection, the next receiver ran on a new one,
    the notification was deleted as sent, and the rules never fired."""
    body = next(
        r for r in requests_of(comment) if r.source_field == "body" and r.model_id == SENTIMENT
    )
    original = rules.run_rules

    def cut_off(registration, request, source):
        if request.pk == body.pk and not cut_off.failed:
            cut_off.failed = True
            raise OperationalError("terminating connection due to administrator command")
        return original(registration, request, source)

    cut_off.failed = False
    monkeypatch.setattr(rules, "run_rules", cut_off)

    run()

    assert cut_off.failed
    assert not RuleFiring.objects.filter(request_uuid=body.uuid).exists()
    assert list(Notification.objects.values_list("request_id", flat=True)) == [body.pk]
    later = timezone.now() + timedelta(seconds=outcomes.DELIVERY_SECONDS + 1)
    assert outcomes.deliver_overdue(now=later) == 1
    fired = RuleFiring.objects.filter(request_uuid=body.uuid).values_list("rule", flat=True)
    assert sorted(fired) == ["explodes", "hide negative"]
    assert not Notification.objects.exists()


def test_outbox__nothing_written_when_nobody_listens(backend, sent):
    request = services.submit("a good day", model=SENTIMENT)
    receivers = classification_succeeded.receivers
    classification_succeeded.receivers = []
    classification_succeeded.sender_receivers_cache.clear()
    try:
        services.process([request.pk])
    finally:
        classification_succeeded.receivers = receivers
        classification_succeeded.sender_receivers_cache.clear()

    assert Notification.objects.count() == 0
