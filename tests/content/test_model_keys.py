"""Registered content named by keys of the model registry (TEXTCLASS["MODELS"]).

A registration, a rule, the reading helpers and ``textclass_backfill --model`` take a key
wherever they take a Hub id; the newest request of a key is found whatever model it had.
"""

from io import StringIO

import pytest
from django.core.management import call_command

from django_textclass import services
from django_textclass.content import latest_results, with_label
from django_textclass.exceptions import RegistrationError
from django_textclass.models import ClassificationRequest, RuleFiring
from django_textclass.rules import Rule
from tests.content.helpers import SENTIMENT, requests_of
from tests.fakes import SCRIPTED, SCRIPTED_OPTIONS, textclass_settings
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db

NEWER = "acme/sentiment-v2"
fired = []


def remember(obj, *, request, rule, score):
    fired.append((obj.pk, request.model_key, rule.name))


def models(model=SENTIMENT, revision="r1"):
    backends = {
        "default": {"BACKEND": SCRIPTED, "OPTIONS": SCRIPTED_OPTIONS},
        "other": {"BACKEND": SCRIPTED, "OPTIONS": SCRIPTED_OPTIONS},
    }
    return textclass_settings(
        BACKENDS=backends,
        MODELS={
            "sentiment": {"MODEL": model, "REVISION": revision},
            "elsewhere": {"MODEL": SENTIMENT, "BACKEND": "other"},
        },
    )


@pytest.fixture
def keyed(register, sent, backend):
    with models():
        register(
            Note,
            ["text"],
            ["sentiment"],
            rules=[Rule("NEGATIVE", 0.5, remember, model="sentiment", name="watch key")],
        )
        yield


def answer_all(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.process(
            list(
                ClassificationRequest.objects.filter(status="pending").values_list("pk", flat=True)
            )
        )


def test_save__a_registration_naming_a_key_submits_with_it(keyed):
    note = Note.objects.create(text="bad service")

    (row,) = requests_of(note)
    assert (row.model_key, row.model_id, row.revision) == ("sentiment", SENTIMENT, "r1")


def test_save__the_same_text_again__nothing_new_whatever_the_key_s_model_now(keyed):
    note = Note.objects.create(text="bad service")
    with models(model=NEWER, revision="r2"):
        note.save()  # same text: the key's newest request stands (textclass_reclassify re-runs)

        assert len(requests_of(note)) == 1
        note.text = "good service"
        note.save()

    rows = requests_of(note)
    assert [(row.model_id, row.revision) for row in rows] == [(SENTIMENT, "r1"), (NEWER, "r2")]


def test_rule_watching_a_key__fires_on_its_results(keyed, django_capture_on_commit_callbacks):
    fired.clear()
    with django_capture_on_commit_callbacks(execute=True):
        note = Note.objects.create(text="bad service")

    answer_all(django_capture_on_commit_callbacks)

    assert fired == [(note.pk, "sentiment", "watch key")]
    assert RuleFiring.objects.get().model_id == SENTIMENT


def test_reading__latest_results_and_with_label_by_key(keyed, django_capture_on_commit_callbacks):
    bad = Note.objects.create(text="bad service")
    good = Note.objects.create(text="a good one")
    answer_all(django_capture_on_commit_callbacks)

    assert set(latest_results(bad)) == {"sentiment"}
    assert latest_results(bad, "sentiment").top_label == "NEGATIVE"
    assert latest_results(bad, SENTIMENT) is None  # the Hub id names requests without a key
    assert list(with_label(Note.objects.all(), "sentiment", "NEGATIVE")) == [bad]
    assert list(with_label(Note.objects.all(), "sentiment", "POSITIVE")) == [good]


def test_backfill__model_option_takes_the_key_and_resumes(keyed):
    Note.objects.bulk_create([Note(text=f"note {i}") for i in range(3)])  # no post_save

    first, again = StringIO(), StringIO()
    call_command("textclass_backfill", "testapp.Note", "--model", "sentiment", stdout=first)
    call_command("textclass_backfill", "testapp.Note", "--model", "sentiment", stdout=again)

    assert "3 requests created" in first.getvalue()
    assert "0 requests created, 3 up to date" in again.getvalue()
    assert set(ClassificationRequest.objects.values_list("model_key", flat=True)) == {"sentiment"}


def test_register__a_key_served_by_another_backend_than_the_registration_s(register):
    with models(), pytest.raises(RegistrationError) as info:
        register(Note, ["text"], ["elsewhere"], backend="default")

    assert info.value.check_id == "textclass.E022"
    assert "served by the backend 'other'" in str(info.value)


def test_register__a_bare_name_that_is_no_key_is_refused(register):
    with models(), pytest.raises(RegistrationError, match="not a model key"):
        register(Note, ["text"], ["sentimnet"])
