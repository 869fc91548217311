"""textclass_backfill, textclass_sweep and textclass_cleanup."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_textclass import content, services
from django_textclass.models import ClassificationRequest, ClassificationScore, Status
from tests.content.helpers import OTHER, SENTIMENT
from tests.fakes import rank
from tests.helpers import ROOT
from tests.management.helpers import Terminal
from tests.testapp.models import Comment, Note, Post

pytestmark = pytest.mark.django_db


def backfill(*args):
    out = StringIO()
    call_command("textclass_backfill", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def existing(sent, register):
    """Twelve comments that predate the registration: no request exists for them."""
    from django_textclass.content.registry import site

    registration = site.get(Comment)
    site.unregister(Comment)
    try:
        comments = [Comment(title=f"title {i}", body=f"body {i}") for i in range(12)]
        Comment.objects.bulk_create(comments)
    finally:
        site._code[Comment] = registration
        from django_textclass.content.registry import _connect

        _connect(Comment)
    assert ClassificationRequest.objects.count() == 0
    return list(Comment.objects.order_by("pk"))


def count():
    return ClassificationRequest.objects.count()


def test_backfill__creates_every_field_and_model_in_batches(existing, sent):
    out = backfill("testapp.Comment", "--batch-size", "5")

    assert count() == 12 * 2 * 2
    assert out.strip() == out.strip().splitlines()[-1]  # one line: no bar off a terminal
    assert out.startswith("testapp.Comment: 12 objects, 48 requests created, 0 up to date")
    rows = ClassificationRequest.objects.filter(source_field="body", model_id=SENTIMENT)
    assert sorted(rows.values_list("text", flat=True)) == sorted(f"body {i}" for i in range(12))
    assert set(rows.values_list("long_text_policy", flat=True)) == {"truncate_head"}


def test_backfill__one_history_read_and_one_insert_per_model_per_batch(existing, sent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        backfill("testapp.Comment", "--batch-size", "12", "--field", "body")

    table = ClassificationRequest._meta.db_table
    sql = [q["sql"] for q in queries]
    assert len([s for s in sql if s.startswith(f'INSERT INTO "{table}"')]) == 2  # 2 models
    assert len([s for s in sql if s.startswith("SELECT") and table in s]) == 1
    assert count() == 24


def test_backfill__dry_run_writes_nothing(existing):
    out = backfill("testapp.Comment", "--dry-run")

    assert count() == 0
    assert "48 requests would be created" in out


def test_backfill__twice_creates_nothing_the_second_time(existing):
    backfill("testapp.Comment")

    out = backfill("testapp.Comment")

    assert count() == 48
    assert "0 requests created, 48 up to date" in out


def test_backfill__resumes_after_an_interruption(existing, monkeypatch):
    real = content.classify_objects
    calls = []

    def interrupted(objects, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(objects, *args, **kwargs)

    monkeypatch.setattr(
        "django_textclass.management.commands.textclass_backfill.classify_objects", interrupted
    )
    with pytest.raises(CommandError, match="Interrupted after 5 objects") as info:
        backfill("testapp.Comment", "--batch-size", "5")
    assert info.value.returncode == 130
    assert count() == 5 * 4
    monkeypatch.undo()

    out = backfill("testapp.Comment", "--batch-size", "5")

    assert count() == 48
    assert "28 requests created, 20 up to date" in out
    pairs = ClassificationRequest.objects.values_list("object_id", "source_field", "model_id")
    assert len(set(pairs)) == 48  # nothing twice


def test_backfill__changed_text_and_failed_requests_are_sent_again(existing):
    backfill("testapp.Comment", "--field", "body", "--model", SENTIMENT)
    first, second = existing[0], existing[1]
    Comment.objects.filter(pk=first.pk).update(body="edited behind the app's back")
    failed = ClassificationRequest.objects.get(object_id=str(second.pk))
    token, rows = services.claim([failed.pk])
    services.fail(token, rows, code="http_500", message="boom")

    out = backfill("testapp.Comment", "--field", "body", "--model", SENTIMENT)

    assert "2 requests created, 10 up to date" in out


def test_backfill__only_missing_skips_changed_texts(existing):
    backfill("testapp.Comment", "--field", "body", "--limit", "4")
    Comment.objects.filter(pk=existing[0].pk).update(body="changed")

    out = backfill("testapp.Comment", "--field", "body", "--only-missing")

    assert "16 requests created, 8 up to date" in out  # 8 objects x 2 models


def test_backfill__field_model_and_limit(existing):
    out = backfill("testapp.Comment", "--field", "title", "--model", OTHER, "--limit", "7")

    assert set(ClassificationRequest.objects.values_list("source_field", "model_id")) == {
        ("title", OTHER)
    }
    assert count() == 7
    assert out.startswith("testapp.Comment: 7 objects, 7 requests created")


def test_backfill__since_uses_the_registered_date_field(existing):
    old = [c.pk for c in existing[:8]]
    Comment.objects.filter(pk__in=old).update(created_at=timezone.now() - timedelta(days=30))
    since = (timezone.now() - timedelta(days=1)).date().isoformat()

    out = backfill("testapp.Comment", "--since", since, "--field", "body")

    assert "4 objects, 8 requests created" in out


def test_backfill__string_primary_keys_walk_in_order(sent, register):
    Post.objects.bulk_create([Post(slug=f"p-{i:02}", body=f"post {i}") for i in range(7)])

    out = backfill("testapp.Post", "--batch-size", "3")

    assert "7 objects, 7 requests created" in out


def test_backfill__skipped_objects_are_counted(sent, register):
    Note.objects.bulk_create(
        [Note(text="x", public=False), Note(text="", public=True), Note(text="y", public=True)]
    )
    register(Note, ["text"], [SENTIMENT], condition="tests.content.test_commands.is_public")

    out = backfill("testapp.Note")

    assert "3 objects, 1 requests created, 0 up to date, 2 objects skipped" in out


def is_public(note):
    return note.public


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.Nothing"], "'nope.Nothing' is not an installed model"),
        (["testapp.SignalLog"], "testapp.SignalLog is not registered"),
        (["testapp.Comment", "--field", "hidden"], "--field 'hidden' is not registered"),
        (["testapp.Comment", "--model", "acme/x"], "--model 'acme/x' is not registered"),
        (["testapp.Comment", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["testapp.Comment", "--limit", "ten"], "--limit must be a whole number"),
        (["testapp.Comment", "--since", "yesterday"], "--since must be a date"),
        (["testapp.Post", "--since", "2026-01-01"], "--since needs a date field"),
    ],
)
def test_backfill__bad_arguments(existing, args, message):
    with pytest.raises(CommandError, match=message):
        backfill(*args)

    assert count() == 0


def run_manage(*args):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["textclass_backfill", "testapp.Comment", "--batch-size", "-3"],
        ["textclass_backfill"],
        ["textclass_backfill", "testapp.Comment", "--nope"],
        ["textclass_cleanup"],
        # Huge numbers overflowed a date, a SQL LIMIT or int(): tracebacks, exit status 1.
        ["textclass_sweep", "--limit", "9223372036854775808"],
        ["textclass_backfill", "testapp.Comment", "--batch-size", str(10**29)],
        ["textclass_cleanup", "--days", "99999999999"],
        ["textclass_rollup", "--max-days", "9" * 5000],
    ],
)
def test_bad_arguments_on_the_command_line__one_line_and_exit_2(args):
    result = run_manage(*args)

    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_backfill__progress_bar_on_a_terminal(existing):
    terminal = Terminal()
    out = StringIO()
    try:
        call_command(
            "textclass_backfill",
            "testapp.Comment",
            "--batch-size",
            "5",
            stdout=out,
            stderr=terminal.stream,
        )
        screen = terminal.read()
    finally:
        terminal.close()

    assert "\r" in screen and "12/12" in screen and "objects/s" in screen
    assert "48 requests created" in screen
    assert out.getvalue().startswith("testapp.Comment: 12 objects")  # stdout: the summary only


def test_backfill__plain_progress_lines_off_a_terminal(existing, monkeypatch):
    monkeypatch.setattr("django_textclass.management.progress.PLAIN_EVERY", 0.0)
    out, err = StringIO(), StringIO()

    call_command(
        "textclass_backfill", "testapp.Comment", "--batch-size", "5", stdout=out, stderr=err
    )

    assert err.getvalue().splitlines()[0].startswith("testapp.Comment: 5/12 objects (42 %), ")
    assert err.getvalue().splitlines()[-1].startswith("testapp.Comment: 12/12 objects (100 %)")
    assert "\r" not in err.getvalue()
    assert len(out.getvalue().splitlines()) == 1


# --- sweep and cleanup -----------------------------------------------------------------


def test_sweep_command__resends_overdue_requests(sent):
    request = services.submit("lost wake-up", model=SENTIMENT)
    ClassificationRequest.objects.filter(pk=request.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    out = StringIO()

    call_command("textclass_sweep", stdout=out)

    assert out.getvalue().strip() == "Sweep: 0 requeued, 0 failed, 1 dispatched."
    assert sent.ids == [request.pk]


def finished_request(text, days_ago, status=Status.SUCCEEDED):
    request = services.submit(text, model=SENTIMENT)
    token, (row,) = services.claim([request.pk])
    if status == Status.SUCCEEDED:
        services.complete(token, [(row, rank(text))])
    else:
        services.fail(token, [row], code="http_500", message="boom")
    ClassificationRequest.objects.filter(pk=row.pk).update(
        finished_at=timezone.now() - timedelta(days=days_ago)
    )
    return row


def test_cleanup__deletes_old_finished_requests_in_batches(sent):
    old = [finished_request(f"old {i}", 40) for i in range(5)]
    old.append(finished_request("old failure", 40, Status.FAILED))
    recent = finished_request("recent", 2)
    pending = services.submit("still waiting", model=SENTIMENT)
    out = StringIO()

    call_command("textclass_cleanup", "--days", "30", "--batch-size", "2", stdout=out)

    assert set(ClassificationRequest.objects.values_list("pk", flat=True)) == {
        recent.pk,
        pending.pk,
    }
    assert not ClassificationScore.objects.filter(request_id__in=[r.pk for r in old]).exists()
    assert out.getvalue().startswith("Deleted 6 request(s) finished before")


def test_cleanup__dry_run_counts_only(sent):
    finished_request("old", 40)
    out = StringIO()

    call_command("textclass_cleanup", "--days", "30", "--dry-run", stdout=out)

    assert out.getvalue().startswith("Would delete 1 request(s)")
    assert ClassificationRequest.objects.count() == 1


def test_cleanup__reads_one_batch_of_ids_at_a_time(sent):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(5):
        finished_request(f"old {i}", 40)

    with CaptureQueriesContext(connection) as queries:
        call_command("textclass_cleanup", "--days", "30", "--batch-size", "2", stdout=StringIO())

    table = ClassificationRequest._meta.db_table
    batches = [
        q["sql"]
        for q in queries
        if q["sql"].startswith(f'SELECT "{table}"."id"') and " LIMIT " in q["sql"]
    ]
    assert len(batches) == 4  # 2 + 2 + 1, then an empty batch
    assert all(sql.endswith("LIMIT 2") for sql in batches)


# --- backfill --wait (the workers' side: tests/integration/test_content.py) -------------


def test_backfill_wait__gives_up_after_the_timeout_with_exit_1(existing, sent):
    out = StringIO()

    with pytest.raises(
        CommandError,
        match=r"Still 24 requests pending or running after 1 s "
        r"\(24 pending, 0 running",
    ) as info:
        call_command(
            "textclass_backfill",
            "testapp.Comment",
            "--field",
            "body",
            "--wait",
            "--timeout",
            "1",
            stdout=out,
            stderr=StringIO(),
        )

    assert info.value.returncode == 1
    assert out.getvalue().startswith("testapp.Comment: 12 objects, 24 requests created")


def test_backfill_wait__counts_only_the_requests_of_this_run(existing, sent):
    backfill("testapp.Comment", "--field", "body")  # 24 requests, still pending
    out = StringIO()

    call_command(
        "textclass_backfill",
        "testapp.Comment",
        "--field",
        "body",
        "--wait",
        stdout=out,
        stderr=StringIO(),
    )

    first, second = out.getvalue().splitlines()
    assert "0 requests created, 24 up to date" in first
    assert second.startswith("Classified: 0 requests final in ")  # the older 24 are not its own
