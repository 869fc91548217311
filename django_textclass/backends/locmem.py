"""An in-process backend for your own tests: answers you can predict or script, calls you can read.

Configure it like any backend (in your test settings, or with ``override_settings``)::

    TEXTCLASS = {"BACKENDS": {"default": {"BACKEND": "django_textclass.backends.locmem.Backend"}}}

It sends nothing anywhere. Every call is appended to :attr:`Backend.calls`, and each call
consumes one step of :attr:`Backend.script` when there is one: ``None`` answers normally,
an exception instance is raised (a :class:`~django_textclass.exceptions.TransientBackendError`
to see a retry, a :class:`~django_textclass.exceptions.PermanentBackendError` to see a
failure), a list of :class:`~django_textclass.types.Ranking` is returned as it is. Both live
on the class, because the pipeline builds and caches its own instances: call
:meth:`Backend.reset` between tests.

Options:
    ANSWER: ``answer(text, parameters) -> Ranking``, or its dotted path. Default: the
        loopback emulator's rule (:mod:`django_textclass.testing.scoring`) over ``LABELS``,
        so a test gets the same scores from this backend as from the emulator.
    LABELS: the labels of the default answer (default ``["POSITIVE", "NEGATIVE"]``).
    BATCH: whether one call takes several texts (default True).
    MAX_BATCH_SIZE: the most texts per call when BATCH is on (default 8).
"""

import threading
from dataclasses import dataclass

from django.utils.module_loading import import_string

from django_textclass.backends.base import BaseBackend, positive_number
from django_textclass.exceptions import TextClassConfigurationError
from django_textclass.testing import scoring
from django_textclass.types import Parameters, Ranking


@dataclass(frozen=True)
class Call:
    """One ``classify`` call the pipeline made."""

    alias: str
    texts: list
    parameters: Parameters
    model_id: str
    use_cache: bool
    wait_for_model: bool
    #: The model revision the request's key named, or None (see ``supports_revision``).
    revision: str = None


class Backend(BaseBackend):
    """Answers in process; see the module's docstring."""

    #: Every call made, oldest first (shared by all instances; :meth:`reset` empties it).
    calls = []
    #: The steps the next calls consume, first one first.
    script = []
    _lock = threading.Lock()
    #: It records the revision a key names, as a backend that loads revisions receives it.
    supports_revision = True

    def __init__(
        self, *, ANSWER=None, LABELS=scoring.DEFAULT_LABELS, BATCH=True, MAX_BATCH_SIZE=8, **options
    ):
        super().__init__(**options)
        if isinstance(ANSWER, str):
            try:
                ANSWER = import_string(ANSWER)
            except ImportError as exc:
                raise TextClassConfigurationError(
                    f"TEXTCLASS backend {self.alias!r}: cannot import ANSWER: {exc}"
                ) from exc
        if ANSWER is not None and not callable(ANSWER):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: ANSWER must be a callable or its dotted path."
            )
        labels = tuple(LABELS) if isinstance(LABELS, (list, tuple)) else ()
        if not labels or not all(isinstance(label, str) and label for label in labels):
            raise TextClassConfigurationError(
                f"TEXTCLASS backend {self.alias!r}: LABELS must be a non-empty list of labels."
            )
        self.answer = ANSWER or self.emulator_answer
        self.labels = labels
        self.supports_batch = bool(BATCH)
        self.max_batch_size = positive_number(self.alias, "MAX_BATCH_SIZE", MAX_BATCH_SIZE, int)

    @classmethod
    def reset(cls):
        """Forget every call and every step left in the script."""
        with cls._lock:
            cls.calls = []
            cls.script = []

    def emulator_answer(self, text, parameters):
        """The emulator's ranking of ``text`` over :attr:`labels`."""
        return Ranking.from_objects(
            scoring.rank(self.labels, text, parameters.function_to_apply, parameters.top_k)
        )

    def classify_texts(
        self, texts, parameters, *, model_id, use_cache, wait_for_model, revision=None
    ):
        """Record the call, then take the script's next step (or answer)."""
        cls = type(self)
        with cls._lock:
            cls.calls.append(
                Call(
                    self.alias,
                    list(texts),
                    parameters,
                    model_id,
                    use_cache,
                    wait_for_model,
                    revision,
                )
            )
            step = cls.script.pop(0) if cls.script else None
        if isinstance(step, BaseException):
            raise step
        if step is not None:
            return step
        return [self.answer(text, parameters) for text in texts]
