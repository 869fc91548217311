"""Test doubles for the unit tests: a scripted backend and a recorder for wake-ups.

``ScriptedBackend`` is configured like any backend (``TEXTCLASS["BACKENDS"]``); its
script and call log live on the class, because the pipeline builds (and caches) its
own instances. Reset both with :meth:`ScriptedBackend.reset` between tests.
"""

from dataclasses import dataclass

from django.conf import settings
from django.test import override_settings

from django_textclass.backends.base import BaseBackend
from django_textclass.types import LabelScore, Ranking

SCRIPTED = "tests.fakes.ScriptedBackend"


@dataclass(frozen=True)
class Call:
    """One ``classify`` call the pipeline made."""

    alias: str
    texts: list
    parameters: object
    model_id: str
    use_cache: bool
    wait_for_model: bool


def rank(text, parameters=None):
    """The deterministic answer: POSITIVE first if "good" is in the text, else NEGATIVE."""
    positive = "good" in text
    # The score also depends on the text, so two texts never share a ranking by accident.
    top = 0.9 + (len(text) % 90) / 1000
    first, second = ("POSITIVE", "NEGATIVE") if positive else ("NEGATIVE", "POSITIVE")
    scores = (LabelScore(first, top), LabelScore(second, round(1 - top, 6)))
    if parameters is not None and parameters.top_k:
        scores = scores[: parameters.top_k]
    return Ranking(scores)


class ScriptedBackend(BaseBackend):
    """A backend driven by a class-level script.

    Each call consumes one step of :attr:`script`: ``None`` answers normally, an
    exception instance is raised, a list of rankings is returned as is. An empty
    script answers normally.
    """

    supports_batch = True
    max_batch_size = 8
    script = []
    calls = []

    @classmethod
    def reset(cls):
        cls.script = []
        cls.calls = []

    def classify_texts(self, texts, parameters, *, model_id, use_cache, wait_for_model):
        cls = type(self)
        cls.calls.append(Call(self.alias, list(texts), parameters, model_id, use_cache,
                              wait_for_model))
        step = cls.script.pop(0) if cls.script else None
        if isinstance(step, BaseException):
            raise step
        if step is not None:
            return step
        return [rank(text, parameters) for text in texts]


def textclass_settings(**overrides):
    """``override_settings`` that merges ``overrides`` into the current ``TEXTCLASS``."""
    return override_settings(TEXTCLASS={**settings.TEXTCLASS, **overrides})


def scripted_settings(**overrides):
    """The test ``TEXTCLASS`` with every backend alias served by :class:`ScriptedBackend`."""
    backends = {
        "default": {"BACKEND": SCRIPTED, "OPTIONS": {}},
        "other": {"BACKEND": SCRIPTED, "OPTIONS": {}},
    }
    return textclass_settings(BACKENDS=backends, **overrides)


class SendRecorder:
    """Stands in for ``django_textclass.dispatch.send``: records ``(ids, countdown)``."""

    def __init__(self):
        self.calls = []

    def __call__(self, ids, countdown=None):
        self.calls.append((list(ids), countdown))
        return 1

    @property
    def ids(self):
        """Every id sent, in order, over all calls."""
        return [pk for ids, _ in self.calls for pk in ids]
