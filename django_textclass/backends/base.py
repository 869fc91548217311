"""The contract every backend fulfils."""

from django_textclass.exceptions import InvalidResponseError, TextClassConfigurationError

#: Longest label stored (the ``label`` columns are 200 characters wide).
MAX_LABEL_LENGTH = 200


class BaseBackend:
    """Classifies texts with one model and returns one ranking per text.

    A backend only translates: it takes plain values (:mod:`django_textclass.types`)
    and returns plain values; it never touches models and sends no signals. The
    pipeline decides batching from the capability flags and retries from the
    exception family a backend raises.

    Subclasses must implement :meth:`classify_texts` and may set:

    Attributes:
        supports_batch: whether one call can classify several texts.
        max_batch_size: the most texts sent in one call when ``supports_batch``.
        calls_in_flight: how many calls one worker run keeps out at once unless the
            backend's ``CALLS_IN_FLIGHT`` says (1: a backend that computes locally gains
            nothing from more).
        supports_revision: whether the backend can serve a given model revision (a local
            backend loading that revision); only then does :meth:`classify_texts` receive
            ``revision``. Elsewhere a key's ``REVISION`` is a label of the stored history
            and of the result cache, and is not sent.
    """

    supports_batch = False
    max_batch_size = 1
    calls_in_flight = 1
    supports_revision = False

    def __init__(self, *, alias="default", **options):
        self.alias = alias
        if options:
            raise TextClassConfigurationError(
                f"Unknown OPTIONS for TEXTCLASS backend {alias!r}: {', '.join(sorted(options))}."
            )

    @property
    def batch_size(self):
        """How many texts the pipeline puts in one :meth:`classify` call."""
        return max(1, self.max_batch_size) if self.supports_batch else 1

    def classify(
        self, texts, parameters, *, model_id, use_cache=True, wait_for_model=False, revision=None
    ):
        """Classify ``texts`` in one call.

        Args:
            texts: a non-empty list of strings, at most :attr:`batch_size` long.
            parameters: a :class:`~django_textclass.types.Parameters`.
            model_id: the Hub repository id of the model.
            use_cache: False asks the server not to answer from its cache.
            wait_for_model: True asks the server to hold the request while the
                model loads (sent only after a 503).
            revision: the model revision a key names, or None; passed on as
                ``revision=`` only to a backend whose :attr:`supports_revision` is true.

        Returns:
            A list of :class:`~django_textclass.types.Ranking`, one per text, in order.

        Raises:
            TransientBackendError: try again later.
            PermanentBackendError: do not try again.
        """
        extra = {"revision": revision} if self.supports_revision else {}
        rankings = self.classify_texts(
            list(texts),
            parameters,
            model_id=model_id,
            use_cache=use_cache,
            wait_for_model=wait_for_model,
            **extra,
        )
        if len(rankings) != len(texts):
            raise InvalidResponseError(f"expected {len(texts)} rankings, got {len(rankings)}")
        for ranking in rankings:
            if not ranking.scores:
                raise InvalidResponseError("a ranking is empty")
            if any(len(item.label) > MAX_LABEL_LENGTH for item in ranking.scores):
                raise InvalidResponseError(f"a label is longer than {MAX_LABEL_LENGTH} characters")
        return rankings

    def classify_texts(self, texts, parameters, *, model_id, use_cache, wait_for_model):
        """Do the work of :meth:`classify`. Subclasses must implement this."""
        raise NotImplementedError

    def check(self):
        """System check messages about this configured backend (default: none).

        Called by ``manage.py check`` once the backend has accepted its ``OPTIONS``
        (``textclass.E003`` reports those it rejects); a backend warns here about what
        only it can know, the way the Hugging Face backend reports a missing token.
        Messages are ``django.core.checks`` objects; use ids of your own, not ``textclass.*``.
        """
        return []

    def close(self):
        """Release pooled resources (sessions); the backend may be used again after."""


def positive_number(alias, name, value, kind=float):
    """``value`` as a positive ``kind``, or a configuration error naming the option."""
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or number <= 0:
        raise TextClassConfigurationError(
            f"TEXTCLASS backend {alias!r}: {name} must be a positive number, not {value!r}."
        )
    return number
