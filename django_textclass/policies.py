"""Long-text policies: what to do with a text longer than the model should get.

A registration (or a ``submit(..., long_text=...)`` call) names one policy; the
policy turns the source text into what is stored and sent, and its name is
recorded on every request it produced (``long_text_policy``):

* ``reject``: a text over the limit is refused with :class:`InvalidInputError`
  (nothing is stored).
* ``truncate_head``: keep the first ``max_length`` characters.
* ``truncate_head_tail``: keep the start and the end, joined by ``" ... "``.
* ``split_mean`` / ``split_max``: cut the text into chunks of at most
  ``max_length`` characters (at whitespace when there is some near the cut), store
  the whole text as a *parent* request and each chunk as a *child* request.
  Children go through the normal pipeline (batching, cache, retries); once the
  last one is final, the parent gets the combined ranking: per label, the mean
  (or the max) of its scores over the chunks, a label absent from a chunk's answer
  counting as 0. A failed chunk fails the parent (``chunk_failed``).

This module is pure: it plans and combines, and stores nothing. Storing a split
text, and settling its parent once the chunks are final, is
:mod:`django_textclass.services.chunks`.
"""

from dataclasses import dataclass

from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError, TextClassConfigurationError
from django_textclass.types import validate_characters, validate_text

HEAD_TAIL_JOIN = " ... "
# A cut looks back this fraction of a chunk for whitespace, so words stay whole.
WHITESPACE_LOOKBACK = 0.2


@dataclass(frozen=True)
class Plan:
    """What a policy makes of one source text.

    Attributes:
        text: what the request stores (the cut text, or the whole text of a split).
        policy: the name recorded on the request.
        source_length: the source text's length in characters.
        chunks: for a split, the chunk texts (empty otherwise).
    """

    text: str
    policy: str
    source_length: int
    chunks: tuple = ()


class LongTextPolicy:
    """Base class: subclasses set :attr:`name` and implement :meth:`shorten`.

    Args:
        max_length: longest text sent to the model, in characters; None uses
            ``TEXTCLASS["MAX_TEXT_LENGTH"]`` (read when the policy is applied).
    """

    name = ""

    def __init__(self, max_length=None):
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1
        ):
            raise TextClassConfigurationError(
                f"long-text policy: max_length must be a whole number >= 1, not {max_length!r}"
            )
        self.max_length = max_length

    @property
    def limit(self):
        """The effective limit: ``max_length``, never above ``MAX_TEXT_LENGTH``."""
        ceiling = app_settings.MAX_TEXT_LENGTH
        return ceiling if self.max_length is None else min(self.max_length, ceiling)

    def prepare(self, text):
        """Apply the policy to ``text``.

        Returns:
            A :class:`Plan`.

        Raises:
            InvalidInputError: the text is not a non-blank string without NUL
                characters or lone surrogates, or (``reject``) it is too long.
        """
        if not isinstance(text, str):
            raise InvalidInputError("text", "must be a string")
        if len(text) <= self.limit:
            return Plan(validate_text(text), self.name, len(text))
        # Checked whole: a split keeps the whole text on its parent, and the source's hash
        # is taken over all of it, whatever part of it is sent.
        validate_characters(text)
        plan = self.shorten(text)
        for piece in plan.chunks or (plan.text,):
            validate_text(piece)
        return plan

    def shorten(self, text):
        """Return the :class:`Plan` for a text longer than :attr:`limit`."""
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self), tuple(sorted(vars(self).items()))))

    def __repr__(self):
        options = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({options})"


class Reject(LongTextPolicy):
    """Refuse a text over the limit: :class:`InvalidInputError`, nothing stored."""

    name = "reject"

    def shorten(self, text):
        """Raise: a rejected text has no plan."""
        raise InvalidInputError(
            "text",
            f"is {len(text)} characters long; the maximum is {self.limit} "
            "(long-text policy 'reject')",
        )


class Truncate(LongTextPolicy):
    """Keep the head of the text, or its head and tail.

    Args:
        max_length: see :class:`LongTextPolicy`.
        keep: ``"head"`` (default) or ``"head_tail"``.
    """

    def __init__(self, max_length=None, keep="head"):
        super().__init__(max_length)
        if keep not in ("head", "head_tail"):
            raise TextClassConfigurationError(
                f"long-text policy truncate: keep must be 'head' or 'head_tail', not {keep!r}"
            )
        self.keep = keep

    @property
    def name(self):
        """``truncate_head`` or ``truncate_head_tail``."""
        return f"truncate_{self.keep}"

    def shorten(self, text):
        """Cut to :attr:`limit` characters."""
        limit = self.limit
        if self.keep == "head" or limit <= len(HEAD_TAIL_JOIN) + 1:
            return Plan(text[:limit], self.name, len(text))
        budget = limit - len(HEAD_TAIL_JOIN)
        head = (budget + 1) // 2
        tail = budget - head
        cut = text[:head] + HEAD_TAIL_JOIN + (text[-tail:] if tail else "")
        return Plan(cut, self.name, len(text))


class Split(LongTextPolicy):
    """Classify the text in chunks and combine their scores.

    Args:
        max_length: longest chunk, see :class:`LongTextPolicy`.
        combine: ``"mean"`` (default) or ``"max"`` of each label's scores.
        max_chunks: most chunks per text; text past them is not classified.
    """

    def __init__(self, max_length=None, combine="mean", max_chunks=10):
        super().__init__(max_length)
        if combine not in ("mean", "max"):
            raise TextClassConfigurationError(
                f"long-text policy split: combine must be 'mean' or 'max', not {combine!r}"
            )
        if isinstance(max_chunks, bool) or not isinstance(max_chunks, int) or max_chunks < 1:
            raise TextClassConfigurationError(
                f"long-text policy split: max_chunks must be a whole number >= 1, "
                f"not {max_chunks!r}"
            )
        self.combine = combine
        self.max_chunks = max_chunks

    @property
    def name(self):
        """``split_mean`` or ``split_max``."""
        return f"split_{self.combine}"

    def shorten(self, text):
        """Cut into chunks; the plan's text is the whole text (kept on the parent)."""
        chunks = tuple(split_text(text, self.limit, self.max_chunks))
        if not chunks:
            raise InvalidInputError("text", "must not be empty or only whitespace")
        return Plan(text, self.name, len(text), chunks)


POLICIES = {
    "reject": lambda **options: Reject(**options),
    "truncate": lambda **options: Truncate(**options),
    "truncate_head": lambda **options: Truncate(keep="head", **options),
    "truncate_head_tail": lambda **options: Truncate(keep="head_tail", **options),
    "split": lambda **options: Split(**options),
    "split_mean": lambda **options: Split(combine="mean", **options),
    "split_max": lambda **options: Split(combine="max", **options),
}
SPEC_KEYS = {"POLICY", "MAX_LENGTH", "KEEP", "COMBINE", "MAX_CHUNKS"}


def from_spec(spec):
    """Build a policy from a policy object, a name, or a settings dict.

    ``None`` is ``TEXTCLASS["LONG_TEXT_POLICY"]``. A dict has ``POLICY`` (a name
    from :data:`POLICIES`) and optionally ``MAX_LENGTH``, ``KEEP``, ``COMBINE``,
    ``MAX_CHUNKS``.

    Raises:
        TextClassConfigurationError: the spec is not one of those.
    """
    if spec is None:
        spec = app_settings.LONG_TEXT_POLICY
    if isinstance(spec, LongTextPolicy):
        return spec
    if isinstance(spec, str):
        spec = {"POLICY": spec}
    if not isinstance(spec, dict):
        raise TextClassConfigurationError(
            f"long-text policy must be a name, a dict or a policy object, not {spec!r}"
        )
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise TextClassConfigurationError(f"long-text policy has unknown keys: {unknown}")
    name = spec.get("POLICY")
    if name not in POLICIES:
        raise TextClassConfigurationError(
            f"long-text policy {name!r} is not one of {', '.join(POLICIES)}"
        )
    options = {key.lower(): value for key, value in spec.items() if key != "POLICY"}
    try:
        return POLICIES[name](**options)
    except TypeError as exc:  # an option the policy does not take (COMBINE on truncate)
        raise TextClassConfigurationError(f"long-text policy {name!r}: {exc}") from exc


def split_text(text, size, max_chunks):
    """Cut ``text`` into at most ``max_chunks`` stripped, non-empty pieces of <= ``size``."""
    chunks = []
    start, length = 0, len(text)
    while start < length and len(chunks) < max_chunks:
        end = min(length, start + size)
        if end < length:
            floor = end - max(1, int(size * WHITESPACE_LOOKBACK))
            for cut in range(end, max(start, floor), -1):
                if text[cut - 1].isspace():
                    end = cut
                    break
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        start = end
    return chunks


def combine(rankings, how):
    """Combine chunk rankings into one, best first.

    Args:
        rankings: one ``[(label, score), ...]`` per chunk.
        how: ``"mean"`` or ``"max"``; a label missing from a chunk counts as 0.

    Returns:
        ``[(label, score), ...]`` sorted by score (then label).
    """
    labels = {label for ranking in rankings for label, _ in ranking}
    per_chunk = [dict(ranking) for ranking in rankings]
    combined = {}
    for label in labels:
        scores = [scores.get(label, 0.0) for scores in per_chunk]
        combined[label] = max(scores) if how == "max" else sum(scores) / len(scores)
    return sorted(combined.items(), key=lambda item: (-item[1], item[0]))
