"""The locmem backend shipped for users' tests: predictable answers, a script, a call log."""

import pytest

from django_textclass import classify, services
from django_textclass.backends.locmem import Backend, Call
from django_textclass.exceptions import (
    PermanentBackendError,
    TextClassConfigurationError,
    TransientBackendError,
)
from django_textclass.models import ClassificationRequest, Status
from django_textclass.testing import scoring
from django_textclass.types import LabelScore, Parameters, Ranking
from tests.backends.helpers import MODEL, block_network
from tests.fakes import textclass_settings

LOCMEM = "django_textclass.backends.locmem.Backend"


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    block_network(monkeypatch)
    Backend.reset()
    yield
    Backend.reset()


def classify_one(backend, text, parameters=None):
    (ranking,) = backend.classify([text], parameters or Parameters(), model_id=MODEL)
    return ranking


def shout(text, parameters):
    """An ANSWER of a test's own: the label is the text in capitals."""
    return Ranking((LabelScore(text.upper(), 1.0),))


@pytest.mark.parametrize(
    "parameters",
    [
        Parameters(),
        Parameters("sigmoid"),
        Parameters("none"),
        Parameters("softmax", 1),
    ],
)
def test_default_answer__is_the_emulators_rule(parameters):
    text = "I love it, but the ending is terrible"

    ranking = classify_one(Backend(), text, parameters)

    expected = scoring.rank(
        scoring.DEFAULT_LABELS, text, parameters.function_to_apply, parameters.top_k
    )
    assert ranking.as_list() == expected


def test_default_answer__over_labels_of_your_own():
    ranking = classify_one(Backend(LABELS=["toxic", "neutral", "insult"]), "you fool")

    assert sorted(item.label for item in ranking.scores) == ["insult", "neutral", "toxic"]
    assert sum(item.score for item in ranking.scores) == pytest.approx(1.0)


@pytest.mark.parametrize("answer", [shout, "tests.backends.test_locmem.shout"])
def test_answer__a_callable_or_its_dotted_path(answer):
    assert classify_one(Backend(ANSWER=answer), "hi").top.label == "HI"


def test_calls__every_call_is_logged_on_the_class():
    Backend(alias="a").classify(["one", "two"], Parameters("sigmoid"), model_id=MODEL)
    Backend(alias="b").classify(
        ["three"], Parameters(), model_id="acme/x", use_cache=False, wait_for_model=True
    )

    assert Backend.calls == [
        Call("a", ["one", "two"], Parameters("sigmoid"), MODEL, True, False),
        Call("b", ["three"], Parameters(), "acme/x", False, True),
    ]


def test_script__steps_are_taken_in_order_then_it_answers():
    scripted = [Ranking((LabelScore("CANNED", 0.5),))]
    Backend.script = [
        TransientBackendError("busy", status_code=503),
        scripted,
        PermanentBackendError("gone", status_code=404),
        None,
    ]
    backend = Backend()

    with pytest.raises(TransientBackendError, match="busy"):
        backend.classify(["a"], Parameters(), model_id=MODEL)
    assert backend.classify(["a"], Parameters(), model_id=MODEL) == scripted
    with pytest.raises(PermanentBackendError, match="gone"):
        backend.classify(["a"], Parameters(), model_id=MODEL)
    assert backend.classify(["a"], Parameters(), model_id=MODEL)[0].top.label in {
        "POSITIVE",
        "NEGATIVE",
    }
    assert Backend.script == [] and len(Backend.calls) == 4


def test_reset__forgets_calls_and_script():
    Backend.script = [None, None]
    Backend().classify(["a"], Parameters(), model_id=MODEL)

    Backend.reset()

    assert Backend.calls == [] and Backend.script == []


@pytest.mark.parametrize(
    ("options", "batch_size"),
    [
        ({}, 8),
        ({"MAX_BATCH_SIZE": 3}, 3),
        ({"BATCH": False}, 1),
    ],
)
def test_batch_options(options, batch_size):
    assert Backend(**options).batch_size == batch_size


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ANSWER": "tests.no_such.answer"}, "cannot import ANSWER"),
        ({"ANSWER": 42}, "ANSWER must be a callable"),
        ({"LABELS": []}, "LABELS must be a non-empty list"),
        ({"LABELS": "POSITIVE"}, "LABELS must be a non-empty list"),
        ({"MAX_BATCH_SIZE": 0}, "MAX_BATCH_SIZE must be a positive number"),
        ({"TOKEN": "x"}, "Unknown OPTIONS"),
    ],
)
def test_bad_options__a_configuration_error_naming_them(options, message):
    with pytest.raises(TextClassConfigurationError, match=message):
        Backend(alias="test", **options)


@pytest.mark.django_db
def test_in_the_pipeline__as_a_user_configures_it(monkeypatch):
    """The documented use: settings name it, classify() stores, the worker answers from it."""
    monkeypatch.setattr(services.dispatch, "send", lambda ids, countdown=None: 1)
    backends = {"default": {"BACKEND": LOCMEM, "OPTIONS": {"MAX_BATCH_SIZE": 2}}}
    with textclass_settings(BACKENDS=backends):
        Backend.script = [TransientBackendError("busy", status_code=503)]
        requests = classify(["a great day", "a terrible day", "a great day", "noon"])

        services.process([request.pk for request in requests])

    rows = {row.text: row for row in ClassificationRequest.objects.all()}
    assert [call.texts for call in Backend.calls] == [["a great day", "a terrible day"], ["noon"]]
    assert rows["a terrible day"].status == Status.PENDING  # its batch met the scripted 503
    assert rows["noon"].status == Status.SUCCEEDED
    assert rows["noon"].labels == scoring.rank(scoring.DEFAULT_LABELS, "noon")
