"""Long-text policies: what is stored, what is sent, and what each request records."""

import pytest

from django_textclass import dispatch, services
from django_textclass.content import classify_objects
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError
from django_textclass.models import ClassificationRequest, ClassificationScore, Status
from django_textclass.policies import Reject, Split, Truncate, combine, from_spec, split_text
from tests.content.helpers import SENTIMENT, requests_of
from tests.testapp.models import Note, Ticket

pytestmark = pytest.mark.django_db

LONG = "good " * 30  # 150 characters


def process_all():
    """Run the worker's body over every pending request until none is left."""
    while ids := list(
        ClassificationRequest.objects.filter(status="pending").values_list("pk", flat=True)
    ):
        services.process(ids)


def test_fits__text_unchanged_and_policy_recorded(sent, register):
    register(Note, ["text"], [SENTIMENT], long_text=Truncate(max_length=200))

    (row,) = requests_of(Note.objects.create(text=LONG))

    assert row.text == LONG
    assert (row.long_text_policy, row.source_length) == ("truncate_head", 150)


def test_reject__long_text_not_stored_and_save_succeeds(sent, register, caplog):
    register(Note, ["text"], [SENTIMENT], long_text=Reject(max_length=100))

    note = Note.objects.create(text=LONG)

    assert requests_of(note) == []
    assert "is 150 characters long; the maximum is 100" in caplog.text
    assert LONG not in caplog.text


def test_reject__short_text_recorded(sent, register):
    register(Note, ["text"], [SENTIMENT], long_text="reject")

    (row,) = requests_of(Note.objects.create(text="short"))

    assert row.long_text_policy == "reject"


def test_submit_reject__raises_and_stores_nothing():
    with pytest.raises(InvalidInputError, match="long-text policy 'reject'"):
        services.submit(["ok", "x" * 50], model=SENTIMENT, long_text=Reject(max_length=10))

    assert ClassificationRequest.objects.count() == 0


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
@pytest.mark.parametrize("policy", [Truncate(max_length=10), Split(max_length=10, max_chunks=1)])
def test_long_text__nul_or_surrogate_past_the_cut__still_refused(policy, bad):
    # A split keeps the whole text on its parent (and its hash is taken over all of it):
    # what lies past the last chunk is stored too.
    with pytest.raises(InvalidInputError):
        services.submit("word " * 10 + bad, long_text=policy)

    assert not ClassificationRequest.objects.exists()


def test_truncate_head__keeps_the_start(sent, register):
    register(Note, ["text"], [SENTIMENT], long_text={"POLICY": "truncate", "MAX_LENGTH": 20})

    note = Note.objects.create(text="0123456789" * 5)
    (row,) = requests_of(note)

    assert row.text == "01234567890123456789"
    assert (row.long_text_policy, row.source_length) == ("truncate_head", 50)
    assert row.source_hash != row.text_hash  # the change check compares the whole text


def test_truncate_head_tail__keeps_both_ends(sent, register):
    register(Note, ["text"], [SENTIMENT], long_text=Truncate(max_length=25, keep="head_tail"))

    (row,) = requests_of(Note.objects.create(text="A" * 30 + "middle" + "Z" * 30))

    assert row.text == "A" * 10 + " ... " + "Z" * 10
    assert len(row.text) == 25
    assert row.long_text_policy == "truncate_head_tail"


def test_truncate__unchanged_long_text_is_not_sent_again(sent, register):
    register(Note, ["text"], [SENTIMENT], long_text=Truncate(max_length=20))
    note = Note.objects.create(text="x" * 30)

    note.save()
    note.text = "x" * 29 + "y"  # differs only past the cut: still a new text
    note.save()

    assert len(requests_of(note)) == 2


def test_split__parent_waits_and_chunks_are_pending(
    sent, register, django_capture_on_commit_callbacks
):
    register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=40))
    text = "good things happen " * 6  # 114 characters

    with django_capture_on_commit_callbacks(execute=True):
        (parent,) = requests_of(Note.objects.create(text=text))
    chunks = list(parent.chunks.order_by("chunk_index"))

    assert parent.status == Status.RUNNING and parent.claim_token is None
    assert parent.text == text and parent.long_text_policy == "split_mean"
    assert parent.lease_expires_at is None and parent.next_attempt_at is None
    assert len(chunks) == 3
    assert all(len(c.text) <= 40 and c.status == Status.PENDING for c in chunks)
    assert all(c.content_type_id is None and c.long_text_policy == "split_mean" for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()
    dispatch.flush()
    assert sorted(sent.ids) == sorted(c.pk for c in chunks)  # no wake-up for the parent


def test_split__worker_never_claims_or_requeues_the_parent(sent, register):
    register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=40))
    (parent,) = requests_of(Note.objects.create(text="good things happen " * 6))

    _, claimed = services.claim([parent.pk])
    swept = services.sweep()

    assert claimed == []
    assert swept["requeued"] == 0
    assert ClassificationRequest.objects.get(pk=parent.pk).status == Status.RUNNING


def test_split_mean__parent_gets_mean_of_chunk_scores(sent, backend, register):
    register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=40))
    (parent,) = requests_of(Note.objects.create(text="good " * 8 + "bad " * 12))

    process_all()

    parent.refresh_from_db()
    chunks = list(parent.chunks.order_by("chunk_index"))
    assert all(c.status == Status.SUCCEEDED for c in chunks)
    expected = combine([[(s.label, s.score) for s in c.scores.all()] for c in chunks], "mean")
    assert parent.status == Status.SUCCEEDED
    assert [(x["label"], pytest.approx(x["score"])) for x in parent.labels] == expected
    assert (parent.top_label, parent.top_score) == (expected[0][0], pytest.approx(expected[0][1]))
    # The chunks went to the backend; the whole text never did.
    assert all(len(text) <= 40 for call in backend.calls for text in call.texts)


def test_split_max__parent_gets_max_of_chunk_scores(sent, backend, register):
    register(Note, ["text"], [SENTIMENT], long_text={"POLICY": "split_max", "MAX_LENGTH": 40})
    (parent,) = requests_of(Note.objects.create(text="good " * 8 + "bad " * 12))

    process_all()

    parent.refresh_from_db()
    chunks = list(parent.chunks.all())
    best = max(s.score for c in chunks for s in c.scores.all())
    assert parent.long_text_policy == "split_max"
    assert parent.top_score == pytest.approx(best)


def test_split__a_failed_chunk_fails_the_parent(sent, backend, register):
    from django_textclass.exceptions import PermanentBackendError

    register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=40))
    (parent,) = requests_of(Note.objects.create(text="good things happen " * 6))
    backend.script = [PermanentBackendError("HTTP 400: bad input", code="http_400")]
    # The backend's batch size (8) puts all chunks in one call: it fails them all.

    process_all()

    parent.refresh_from_db()
    assert parent.status == Status.FAILED
    assert parent.error_code == "chunk_failed"
    assert "http_400" in parent.error_message
    assert not ClassificationScore.objects.filter(request=parent).exists()


def test_split__retry_sends_the_failed_chunks_not_the_whole_text(sent, backend, register):
    from django_textclass.exceptions import PermanentBackendError

    register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=40))
    (parent,) = requests_of(Note.objects.create(text="good things happen " * 6))
    backend.script = [PermanentBackendError("HTTP 401", code="http_401", status_code=401)]
    process_all()
    calls_before = len(backend.calls)

    assert services.retry(ClassificationRequest.objects.get(pk=parent.pk)) is True
    process_all()

    parent.refresh_from_db()
    assert parent.status == Status.SUCCEEDED
    sent_texts = [text for call in backend.calls[calls_before:] for text in call.texts]
    assert parent.text not in sent_texts
    assert set(sent_texts) == set(parent.chunks.values_list("text", flat=True))


def test_split__reclassify_copies_the_text_with_new_chunks(sent, backend, register):
    register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=40))
    (parent,) = requests_of(Note.objects.create(text="good things happen " * 6))
    process_all()
    chunk_count = parent.chunks.count()

    assert services.reclassify(ClassificationRequest.objects.filter(pk=parent.pk)) == 1
    copy = ClassificationRequest.objects.filter(parent__isnull=True).exclude(pk=parent.pk).get()
    assert copy.status == Status.RUNNING and copy.use_cache is False
    assert copy.chunks.count() == chunk_count
    process_all()

    copy.refresh_from_db()
    assert copy.status == Status.SUCCEEDED
    assert all(call.use_cache is False for call in backend.calls[-1:])


def test_split__parent_settled_by_the_sweep_when_a_chunk_was_cancelled_by_hand(sent, register):
    register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=40))
    (parent,) = requests_of(Note.objects.create(text="good things happen " * 6))
    for chunk in parent.chunks.all():
        services.cancel(chunk)

    services.sweep()

    assert ClassificationRequest.objects.get(pk=parent.pk).status == Status.CANCELLED


def test_backfill__each_text_is_planned_once(sent, register, monkeypatch):
    registration = register(Note, ["text"], [SENTIMENT], long_text=Split(max_length=60))
    notes = [Note.objects.create(text=f"{LONG} {n}") for n in range(3)]
    ClassificationRequest.objects.all().delete()
    planned = []
    real = Split.prepare

    def prepare(self, text):
        planned.append(text)
        return real(self, text)

    monkeypatch.setattr(Split, "prepare", prepare)

    counts = classify_objects(notes, registration)

    assert counts["created"] == 3
    assert sorted(planned) == sorted(note.text for note in notes)
    assert all(len(requests_of(note)) == 1 for note in notes)


def test_ticket_registration__split_from_the_app_config(sent):
    (parent,) = requests_of(Ticket.objects.create(body="good day " * 10))

    assert parent.long_text_policy == "split_mean"
    assert parent.chunks.count() == 3  # 90 characters in chunks of at most 40


# --- the pure parts ---------------------------------------------------------------------


def test_split_text__cuts_at_whitespace_and_caps_chunks():
    assert split_text("aaaa bbbb cccc", 10, 10) == ["aaaa bbbb", "cccc"]
    assert split_text("x" * 25, 10, 10) == ["x" * 10, "x" * 10, "x" * 5]
    assert split_text("x" * 25, 10, 2) == ["x" * 10, "x" * 10]


def test_combine__mean_counts_a_missing_label_as_zero():
    rankings = [[("A", 0.8), ("B", 0.2)], [("A", 0.4)]]

    assert combine(rankings, "mean") == [("A", pytest.approx(0.6)), ("B", pytest.approx(0.1))]
    assert combine(rankings, "max") == [("A", 0.8), ("B", 0.2)]


@pytest.mark.parametrize(
    "spec",
    [
        "shorten",
        {"POLICY": "split", "KEEP": "head"},
        {"POLICY": "truncate", "MAX_LENGTH": 0},
        {"POLICY": "split", "COMBINE": "median"},
        {"MAX_LENGTH": 10},
        42,
        {"POLICY": "reject", "X": 1},
    ],
)
def test_from_spec__bad_specs_raise_configuration_errors(spec):
    with pytest.raises(TextClassConfigurationError):
        from_spec(spec)


def test_from_spec__none_reads_the_setting(settings):
    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "LONG_TEXT_POLICY": {"POLICY": "split_max", "MAX_LENGTH": 500},
    }

    assert from_spec(None) == Split(max_length=500, combine="max")


def test_limit__never_above_max_text_length(settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "MAX_TEXT_LENGTH": 30}

    assert Truncate(max_length=100).limit == 30
    assert Truncate().prepare("y" * 40).text == "y" * 30
