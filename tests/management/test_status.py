"""textclass_status: counts by status, failures by code, the health report; --watch."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_textclass import services
from django_textclass.models import ClassificationRequest
from tests.health.helpers import request, swept


def status(*args, stderr=None):
    out = StringIO()
    call_command("textclass_status", *args, stdout=out, stderr=stderr or StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_status__counts_failures_by_code_and_health():
    swept(5)
    request("pending", age=30)
    request("running", age=20)
    for i in range(3):
        request("succeeded", age=10, text=f"ok {i}")
    request("failed", age=10, error_code="http_500", text="f1")
    request("failed", age=10, error_code="http_500", text="f2")
    request("failed", age=10, error_code="timeout", text="f3")

    lines = status().splitlines()

    assert lines[:6] == [
        "Requests (all time, split texts counted once): 8",
        "  pending    1",
        "  running    1",
        "  succeeded  3",
        "  failed     3   http_500 2, timeout 1",
        "  cancelled  0",
    ]
    assert lines[6] == "Health: ok"
    assert lines[7].startswith(
        "  backlog: 1 pending, 1 running; the oldest pending was submitted 3"
    )
    assert lines[8].startswith("  sweep: last ran ")
    assert "  backend default: circuit closed" in lines
    assert lines[-1] == ("  failures of requests created in the last 900 s: 3 of 6 (50.0 %)")


@pytest.mark.django_db
def test_status__scope_by_model_source_and_since():
    from datetime import timedelta

    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from tests.testapp.models import Comment

    request(
        "succeeded",
        age=3 * 86400,
        text="old",
        model_id="acme/a",
        content_type=ContentType.objects.get_for_model(Comment),
        object_id="7",
    )
    request("succeeded", age=10, text="new a", model_id="acme/a")
    request("pending", age=10, text="new b", model_id="acme/b")
    since = (timezone.now() - timedelta(days=1)).date().isoformat()

    assert status("--model", "acme/a").splitlines()[0].endswith(": 2")
    assert status("--model", "acme/a", "--since", since).splitlines()[0] == (
        f"Requests (since {since}, split texts counted once): 1"
    )
    assert status("--source", "testapp.Comment").splitlines()[0].endswith(": 1")
    assert status("--source", "testapp.Post").splitlines()[0].endswith(": 0")
    assert "Health: warning" in status()  # the sweep never ran


@pytest.mark.django_db
def test_status__model_option_takes_a_key_of_the_registry(settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MODELS": {"sentiment": {"MODEL": "acme/b"}}}
    request("succeeded", age=10, text="keyed, old model", model_id="acme/a", model_key="sentiment")
    request("pending", age=10, text="keyed", model_id="acme/b", model_key="sentiment")
    request("succeeded", age=10, text="the model without the key", model_id="acme/b")

    assert status("--model", "sentiment").splitlines()[0].endswith(": 2")
    assert status("--model", "acme/b").splitlines()[0].endswith(": 1")


@pytest.mark.django_db
def test_status__health_problems_are_listed():
    swept(2000)

    text = status()

    assert "Health: critical" in text
    assert "  ! the sweep last ran 2,000 s ago (critical past 900 s)" in text


@pytest.mark.django_db
def test_watch__returns_at_once_when_nothing_is_left():
    request("succeeded", age=5)

    out = status("--watch")

    assert out.startswith("Done in ") and "0 pending, 0 running, 1 succeeded" in out


@pytest.mark.django_db
def test_watch__gives_up_after_the_timeout_with_exit_1():
    request("pending", age=5)

    with pytest.raises(
        CommandError,
        match=r"Still 1 requests pending or running after 1 s "
        r"\(1 pending, 0 running",
    ) as info:
        status("--watch", "--interval", "1", "--timeout", "1")

    assert info.value.returncode == 1


@pytest.mark.django_db(transaction=True)
def test_watch__follows_requests_as_they_become_final(monkeypatch):
    monkeypatch.setattr("django_textclass.management.progress.PLAIN_EVERY", 0.0)
    rows = [request("pending", age=5, text=f"t{i}") for i in range(4)]
    err = StringIO()
    seen = threading.Event()

    def finish_later():
        # Another process's work, as the watcher sees it: final rows, committed one by one.
        seen.wait(10)
        for row in rows:
            services.cancel_many(ClassificationRequest.objects.filter(pk=row.pk))

    original_write = err.write

    def write(text):
        seen.set()  # the watcher has looked once
        return original_write(text)

    err.write = write
    helper = threading.Thread(target=finish_later)
    helper.start()
    try:
        out = status("--watch", "--interval", "1", "--timeout", "60", stderr=err)
    finally:
        helper.join(20)

    lines = err.getvalue().splitlines()
    assert lines[0].startswith("final: 0/4 requests final (0 %)")
    assert "4 pending, 0 running" in lines[0]
    assert lines[-1].startswith("final: 4/4 requests final (100 %)")
    assert out.startswith("Done in ") and "4 cancelled" in out
