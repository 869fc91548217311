"""``textclass_reclassify --key``: the texts an older model or revision of a key answered.

The history is built through the services (submitted with the key, then answered or failed
as a worker would), the key is moved to another model or revision, and the command runs in
process. The worker's side of ``--wait`` is in ``tests/integration/test_registry.py``.
"""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_textclass import dispatch, services
from django_textclass.models import ClassificationRequest, Status
from tests.fakes import SendRecorder, rank, textclass_settings
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db

OLD, NEW = "acme/sentiment-v1", "acme/sentiment-v2"


def key(model=OLD, revision="r1"):
    return textclass_settings(
        MODELS={
            "sentiment": {"MODEL": model, "REVISION": revision, "PARAMETERS": {"top_k": 2}},
            "toxicity": {"MODEL": "acme/toxic"},
        }
    )


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    recorder = SendRecorder()
    monkeypatch.setattr(dispatch, "send", recorder)
    yield recorder
    dispatch.flush()


def answered(*requests, status=Status.SUCCEEDED):
    token, rows = services.claim([request.pk for request in requests])
    if status == Status.SUCCEEDED:
        services.complete(token, [(row, rank(row.text)) for row in rows])
    else:
        services.fail(token, rows, code="http_500", message="boom")
    return rows


def reclassify(*args):
    out, err = StringIO(), StringIO()
    call_command("textclass_reclassify", "--key", "sentiment", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def new_rows():
    return ClassificationRequest.objects.filter(model_id=NEW, parent__isnull=True).order_by("pk")


@pytest.fixture
def history(alice, bob):
    """Old answers of the key: free texts of two owners, and notes' texts."""
    with key():
        rows = {
            "alice": services.submit("a good day", "sentiment", owner=alice),
            "alice_again": services.submit("a good day", "sentiment", owner=alice),
            "bob": services.submit("a good day", "sentiment", owner=bob),
            "failed": services.submit("a bad day", "sentiment", owner=alice),
            "pending": services.submit("still waiting", "sentiment", owner=alice),
            "other_key": services.submit("a good day", "toxicity", owner=alice),
            "no_key": services.submit("a good day", OLD, owner=alice),
        }
        notes = [Note.objects.create(text=f"note {i}") for i in range(3)]
        for i, note in enumerate(notes):
            rows[f"note{i}"] = services.submit(
                note.text, "sentiment", source=note, source_field="text"
            )
    answered(*[row for name, row in rows.items() if name not in ("failed", "pending")])
    answered(rows["failed"], status=Status.FAILED)
    rows["notes"] = notes
    return rows


def test_reclassify__new_requests_for_the_outdated_texts_old_rows_kept(history, alice, bob):
    with key(NEW, "r2"):
        out, _ = reclassify()

    made = list(new_rows())
    assert out.startswith(
        "sentiment: 7 requests of older models or revisions, 6 new requests "
        f"created for {NEW} revision r2 on 'default', 1 already done or "
        "superseded, in "
    )
    assert all(
        (row.model_key, row.revision, row.top_k, row.status, row.use_cache)
        == ("sentiment", "r2", 2, Status.PENDING, True)
        for row in made
    )
    free = sorted((row.owner.username, row.text) for row in made if row.content_type is None)
    assert free == [("alice", "a bad day"), ("alice", "a good day"), ("bob", "a good day")]
    assert (
        sorted((row.source for row in made if row.content_type), key=lambda n: n.pk)
        == history["notes"]
    )
    untouched = ClassificationRequest.objects.filter(model_id=OLD)
    assert untouched.count() == 9 and untouched.filter(status=Status.PENDING).count() == 1
    assert ClassificationRequest.objects.filter(model_key="toxicity").count() == 1


def test_reclassify__wakes_the_new_requests_after_each_batch_commits(
    history, sent, django_capture_on_commit_callbacks
):
    with key(NEW, "r2"), django_capture_on_commit_callbacks(execute=True):
        reclassify("--batch-size", "3")
    dispatch.flush()

    assert sorted(sent.ids) == sorted(new_rows().values_list("pk", flat=True))


def test_reclassify__a_new_revision_alone_is_outdated_too(history):
    with key(OLD, "r2"):
        reclassify()

    assert ClassificationRequest.objects.filter(model_id=OLD, revision="r2").count() == 6


def test_reclassify__nothing_when_the_key_did_not_move(history):
    with key():
        out, _ = reclassify()

    assert out.startswith("sentiment: 0 requests of older models or revisions, 0 new requests")
    assert not new_rows().exists()


def test_reclassify__twice_creates_nothing_the_second_time(history):
    with key(NEW, "r2"):
        reclassify()
        out, _ = reclassify()

    assert "7 requests of older models or revisions, 0 new requests created" in out
    assert new_rows().count() == 6


def test_reclassify__resumes_after_an_interruption_without_duplicates(history, monkeypatch):
    real = services.rerun
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "rerun", interrupted)
    with key(NEW, "r2"), pytest.raises(CommandError, match="Interrupted after 2 requests") as info:
        reclassify("--batch-size", "2")
    assert info.value.returncode == 130
    assert new_rows().count() == 1  # alice's "a good day"; her second row was the same text
    monkeypatch.undo()

    with key(NEW, "r2"):
        out, _ = reclassify("--batch-size", "2")

    assert new_rows().count() == 6
    assert "5 new requests created" in out
    texts = list(new_rows().values_list("owner_id", "object_id", "text"))
    assert len(set(texts)) == len(texts)  # nothing twice


def test_reclassify__an_object_s_newer_request_supersedes_its_older_ones(history):
    edited, current = history["notes"][:2]
    with key():  # a second old request for the note: only the newest counts
        answered(services.submit("note 0, edited", "sentiment", source=edited, source_field="text"))
    with key(NEW, "r2"):  # already current: nothing to re-run for this note
        services.submit("note 1, edited", "sentiment", source=current, source_field="text")
        out, _ = reclassify()

    assert "8 requests of older models or revisions, 5 new requests created" in out
    assert list(new_rows().filter(object_id=str(edited.pk)).values_list("text", flat=True)) == [
        "note 0, edited"
    ]
    assert list(new_rows().filter(object_id=str(current.pk)).values_list("text", flat=True)) == [
        "note 1, edited"
    ]  # the save's own, not a copy of "note 1"


def test_reclassify__since_and_until_select_by_creation(history):
    ClassificationRequest.objects.filter(pk=history["bob"].pk).update(
        created_at=timezone.now() - timedelta(days=10)
    )
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    until = (timezone.now() - timedelta(days=5)).date().isoformat()

    with key(NEW, "r2"):
        out_old, _ = reclassify("--until", until)
        out_new, _ = reclassify("--since", since)

    assert "1 requests of older models or revisions, 1 new requests" in out_old
    assert new_rows().filter(owner=history["bob"].owner).count() == 1
    assert "6 requests of older models or revisions, 5 new requests" in out_new


def test_reclassify__dry_run_counts_and_writes_nothing(history):
    before = ClassificationRequest.objects.count()
    with key(NEW, "r2"):
        out, _ = reclassify("--dry-run", "--batch-size", "1")

    assert "6 new requests would be created" in out
    assert ClassificationRequest.objects.count() == before


def test_reclassify__a_split_text_goes_again_with_its_chunks(sent):
    with key():
        parent = services.submit(
            "word " * 30, "sentiment", long_text={"POLICY": "split", "MAX_LENGTH": 40}
        )
        chunks = list(ClassificationRequest.objects.filter(parent=parent))
        answered(*chunks)
        ClassificationRequest.objects.filter(pk=parent.pk).update(status=Status.SUCCEEDED)
    with key(NEW, "r2"):
        reclassify()

    (copy,) = new_rows()
    assert copy.chunks.count() == len(chunks) and copy.status == Status.RUNNING


def test_reclassify__progress_lines_off_a_terminal(history, plain_every):
    with key(NEW, "r2"):
        _, err = reclassify("--batch-size", "4")

    assert [line.split(",")[0] for line in err.splitlines()] == [
        "reclassify sentiment: 4/7 requests (57 %)",
        "reclassify sentiment: 7/7 requests (100 %)",
    ]
    assert err.splitlines()[-1].endswith("6 requests created")


def test_reclassify__wait_gives_up_after_the_timeout_with_exit_1(history):
    out = StringIO()
    with (
        key(NEW, "r2"),
        pytest.raises(CommandError, match=r"Still 6 requests pending or running after 1 s") as info,
    ):
        call_command(
            "textclass_reclassify",
            "--key",
            "sentiment",
            "--wait",
            "--timeout",
            "1",
            stdout=out,
            stderr=StringIO(),
        )

    assert info.value.returncode == 1
    assert "6 new requests created" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--key", "nope"],
            "--key 'nope' is not a key of TEXTCLASS['MODELS'] (sentiment, toxicity)",
        ),
        (
            ["--key", "sentiment", "--since", "2026-02-01", "--until", "2026-01-01"],
            "--since must be earlier than --until",
        ),
        (["--key", "sentiment", "--timeout", "5"], "--timeout only applies with --wait"),
        (["--key", "sentiment", "--wait", "--dry-run"], "--wait cannot be used with --dry-run"),
    ],
)
def test_reclassify__bad_arguments_exit_2_nothing_created(history, args, words):
    before = ClassificationRequest.objects.count()
    with (
        key(NEW, "r2"),
        pytest.raises(
            CommandError,
            match=words.replace("(", r"\(")
            .replace(")", r"\)")
            .replace("[", r"\[")
            .replace("]", r"\]"),
        ) as info,
    ):
        call_command("textclass_reclassify", *args, stdout=StringIO(), stderr=StringIO())

    assert info.value.returncode == 2
    assert ClassificationRequest.objects.count() == before


def test_reclassify__a_key_whose_entry_is_wrong__exit_2(history):
    with (
        textclass_settings(MODELS={"sentiment": {"MODEL": NEW, "BACKEND": "gone"}}),
        pytest.raises(CommandError, match="BACKEND 'gone'") as info,
    ):
        reclassify()

    assert info.value.returncode == 2
