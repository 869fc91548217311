"""Plain values that cross the backend boundary (no ORM objects)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from django_textclass.conf import app_settings
from django_textclass.exceptions import InvalidInputError, InvalidResponseError

FUNCTIONS_TO_APPLY = ("sigmoid", "softmax", "none")

# A Hub repository id: "name" or "owner/name"; letters, digits, "-", "_", ".",
# no leading/trailing punctuation, no "..", at most 96 characters per part.
_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_MODEL_ID_RE = re.compile(rf"(?:{_REPO_PART}/)?{_REPO_PART}")


def validate_model_id(model_id):
    """Return ``model_id`` if it is a valid Hub repository id, else raise.

    Raises:
        InvalidInputError: (field ``model``) for URLs, paths, spaces, ``..``.
    """
    if not isinstance(model_id, str) or not _MODEL_ID_RE.fullmatch(model_id) or ".." in model_id:
        raise InvalidInputError("model", "not a valid Hugging Face repository id (owner/name)")
    return model_id


@dataclass(frozen=True)
class Parameters:
    """The text-classification ``parameters`` object.

    Attributes:
        function_to_apply: ``"sigmoid"``, ``"softmax"``, ``"none"`` or None (the
            model's default).
        top_k: keep only the K best labels; None keeps what the server sends.
    """

    function_to_apply: str | None = None
    top_k: int | None = None

    def __post_init__(self):
        function = self.function_to_apply
        if function is not None and function not in FUNCTIONS_TO_APPLY:
            raise InvalidInputError(
                "function_to_apply", f"must be one of {', '.join(FUNCTIONS_TO_APPLY)}"
            )
        top_k = self.top_k
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 1000
        ):
            raise InvalidInputError("top_k", "must be an integer from 1 to 1000")

    def as_payload(self):
        """The ``parameters`` object to send; keys left at None are omitted."""
        payload = {}
        if self.function_to_apply is not None:
            payload["function_to_apply"] = self.function_to_apply
        if self.top_k is not None:
            payload["top_k"] = self.top_k
        return payload


@dataclass(frozen=True)
class LabelScore:
    """One ``{label, score}`` pair of an answer."""

    label: str
    score: float

    def as_dict(self):
        """The API's own ``{"label", "score"}`` object."""
        return {"label": self.label, "score": self.score}


@dataclass(frozen=True)
class Ranking:
    """Every label a backend returned for one text, best first."""

    scores: tuple[LabelScore, ...] = field(default_factory=tuple)

    @property
    def top(self):
        """The best :class:`LabelScore`, or None for an empty ranking."""
        return self.scores[0] if self.scores else None

    def as_list(self):
        """The ranking as the API's list of ``{"label", "score"}`` objects."""
        return [item.as_dict() for item in self.scores]

    @classmethod
    def from_objects(cls, objects):
        """Build a ranking from the API's list of ``{"label", "score"}`` objects.

        The list is sorted best first (servers already do; we do not rely on it).

        Raises:
            InvalidResponseError: if an item is not a label/score object.
        """
        if not isinstance(objects, list):
            raise InvalidResponseError("expected a list of {label, score} objects")
        scores = []
        for item in objects:
            if not isinstance(item, dict):
                raise InvalidResponseError("expected a {label, score} object in the ranking")
            label, score = item.get("label"), item.get("score")
            if not isinstance(label, str) or not label:
                raise InvalidResponseError("a ranking item has no string label")
            numeric = isinstance(score, (int, float)) and not isinstance(score, bool)
            if not numeric or not math.isfinite(score):
                raise InvalidResponseError("a ranking item has no finite numeric score")
            scores.append(LabelScore(label, float(score)))
        scores.sort(key=lambda item: (-item.score, item.label))
        return cls(tuple(scores))


def has_lone_surrogate(value):
    r"""Whether the string ``value`` holds a lone surrogate, which no UTF-8 text can carry.

    JSON's ``"\ud800"`` escape and Python strings may hold one; encoding, storing or
    rendering it then fails far from where it came in.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate_characters(text, field="text"):
    """Raise :class:`InvalidInputError` if the string ``text`` cannot be stored as it is.

    A NUL character (PostgreSQL refuses it) or a lone surrogate (no UTF-8 exists for it)
    anywhere in it.
    """
    if "\x00" in text:
        raise InvalidInputError(field, "must not contain NUL characters")
    if has_lone_surrogate(text):
        raise InvalidInputError(field, "must not contain lone surrogates (U+D800 to U+DFFF)")
    return text


def validate_text(text, field="text"):
    """Return ``text`` if it may be classified, else raise :class:`InvalidInputError`.

    A text is a string, not empty or only whitespace, with no NUL character (PostgreSQL
    cannot store one) and no lone surrogate (no UTF-8 encoding exists for it), at most
    ``MAX_TEXT_LENGTH`` characters long.
    """
    if not isinstance(text, str):
        raise InvalidInputError(field, "must be a string")
    if not text.strip():
        raise InvalidInputError(field, "must not be empty or only whitespace")
    validate_characters(text, field)
    limit = app_settings.MAX_TEXT_LENGTH
    if len(text) > limit:
        raise InvalidInputError(field, f"is {len(text)} characters long; the maximum is {limit}")
    return text
