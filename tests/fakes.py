"""Test doubles for the unit tests: the scripted backend, its answer, a recorder for wake-ups.

The scripted backend is the one the package ships for users' tests,
:mod:`django_textclass.backends.locmem`, answering with :func:`rank` (the rule these
tests were written against). Its script and call log live on the class, because the
pipeline builds (and caches) its own instances: reset both with
:meth:`ScriptedBackend.reset` between tests.
"""

from django.conf import settings
from django.test import override_settings

from django_textclass.backends.locmem import Backend as ScriptedBackend
from django_textclass.types import LabelScore, Ranking

__all__ = [
    "SCRIPTED",
    "SCRIPTED_OPTIONS",
    "ScriptedBackend",
    "SendRecorder",
    "rank",
    "scripted_settings",
    "textclass_settings",
]

SCRIPTED = "django_textclass.backends.locmem.Backend"
#: The OPTIONS every scripted alias gets: answers by :func:`rank`.
SCRIPTED_OPTIONS = {"ANSWER": "tests.fakes.rank"}


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


def textclass_settings(**overrides):
    """``override_settings`` that merges ``overrides`` into the current ``TEXTCLASS``."""
    return override_settings(TEXTCLASS={**settings.TEXTCLASS, **overrides})


def scripted_settings(options=None, **overrides):
    """The test ``TEXTCLASS`` with every backend alias served by the scripted backend.

    ``options`` are added to each alias's ``OPTIONS`` (``{"MAX_BATCH_SIZE": 2}``, say).
    """
    options = {**SCRIPTED_OPTIONS, **(options or {})}
    backends = {
        "default": {"BACKEND": SCRIPTED, "OPTIONS": options},
        "other": {"BACKEND": SCRIPTED, "OPTIONS": options},
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
