"""Submitting texts: checked, stored in one transaction, woken once it commits.

What is done to stored requests afterwards (cancel, retry, reclassify, rerun) is
:mod:`django_textclass.services.actions`.
"""

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from django_textclass import catalog, policies
from django_textclass.backends import backend_config
from django_textclass.exceptions import (
    InvalidInputError,
)
from django_textclass.models import (
    ClassificationRequest,
    text_hash,
)
from django_textclass.services import chunks, dispatch
from django_textclass.types import has_lone_surrogate, validate_text

OBJECT_ID_LENGTH = ClassificationRequest._meta.get_field("object_id").max_length
SOURCE_FIELD_LENGTH = ClassificationRequest._meta.get_field("source_field").max_length
#: Most texts one :func:`submit` call takes: a list is built, stored and woken in one
#: transaction, so a caller with more sends them in several calls (the backfill command
#: walks its objects in batches for the same reason).
MAX_TEXTS_PER_SUBMIT = 10_000


def submit(
    texts,
    model=None,
    *,
    function_to_apply=None,
    top_k=None,
    owner=None,
    source=None,
    source_field="",
    use_cache=True,
    backend=None,
    long_text=None,
):
    """Store texts for classification and wake a worker once the transaction commits.

    The rows are written in the caller's transaction (a rollback leaves nothing
    and sends nothing). The wake-up is sent after commit; if the broker is down
    the rows simply wait for the sweep.

    Args:
        texts: one string, or a list of strings.
        model: a Hub repository id, or a key of ``TEXTCLASS["MODELS"]`` (which brings its
            backend, model, revision and default parameters); default
            ``TEXTCLASS["DEFAULT_MODEL"]``.
        function_to_apply: ``"sigmoid"``, ``"softmax"``, ``"none"`` or None (a key's default).
        top_k: keep the K best labels, or None (a key's default).
        owner: the user the requests belong to, or None.
        source: a saved model instance the text came from (stored as a generic link).
        source_field: the field of ``source`` that held the text (at most 100 characters).
        use_cache: ``True`` or ``False``; False bypasses stored results and the API's cache.
        backend: a ``TEXTCLASS["BACKENDS"]`` alias; default ``DEFAULT_BACKEND`` (a key's own
            backend; naming another one with a key is refused).
        long_text: a long-text policy (object, name or dict; see
            :mod:`django_textclass.policies`) applied to each text and recorded on
            its request; None keeps the plain ``MAX_TEXT_LENGTH`` check.

    Returns:
        A :class:`ClassificationRequest` for a string, a list of them for a list.

    Raises:
        InvalidInputError: a text, the model id, a parameter, ``owner``, ``source`` or
            ``source_field`` is not acceptable, or the list holds more than
            :data:`MAX_TEXTS_PER_SUBMIT` texts (nothing is stored).
        TextClassConfigurationError: the backend alias is not configured, or the key's
            entry is wrong.
    """
    single = isinstance(texts, str)
    if not single and not isinstance(texts, (list, tuple)):
        raise InvalidInputError("texts", "must be a string or a list of strings")
    items = [texts] if single else list(texts)
    if not items:
        raise InvalidInputError("texts", "must not be empty")
    if len(items) > MAX_TEXTS_PER_SUBMIT:
        raise InvalidInputError(
            "texts",
            f"has {len(items)} items; the maximum is {MAX_TEXTS_PER_SUBMIT} per call "
            "(submit more in several calls)",
        )
    rows = submit_many(
        [Item(text, source, source_field) for text in items],
        model,
        function_to_apply=function_to_apply,
        top_k=top_k,
        owner=owner,
        use_cache=use_cache,
        backend=backend,
        long_text=long_text,
    )
    return rows[0] if single else rows


@dataclass(frozen=True)
class Item:
    """One text for :func:`submit_many`, with the object it came from (if any).

    ``plan`` is the text's :class:`~django_textclass.policies.Plan` under the
    ``long_text`` policy of the call, for a caller that made it already (the backfill
    does, to count the texts the policy rejects); None has :func:`submit_many` make it.
    """

    text: str
    source: object = None
    source_field: str = ""
    plan: object = None


def submit_many(
    items,
    model=None,
    *,
    function_to_apply=None,
    top_k=None,
    owner=None,
    use_cache=True,
    backend=None,
    long_text=None,
):
    """Store many texts, each with its own source, in one transaction; the one submit path.

    :func:`submit` and the registered-content backfill both come here. The arguments
    are those of :func:`submit`, with ``items`` (:class:`Item`) in place of the texts
    and their source.

    Returns:
        The stored requests, in the order of ``items`` (split texts: their parent).

    Raises:
        InvalidInputError, TextClassConfigurationError: as :func:`submit`; nothing is stored.
    """
    plans = None
    if long_text is None:
        for item in items:
            validate_text(item.text)
    else:
        policy = policies.from_spec(long_text)
        plans = [policy.prepare(item.text) if item.plan is None else item.plan for item in items]
    target = catalog.resolve(
        model, backend=backend, function_to_apply=function_to_apply, top_k=top_k
    )
    parameters = target.parameters
    _validate_owner(owner)
    if not isinstance(use_cache, bool):
        raise InvalidInputError("use_cache", "must be True or False")
    for item in items:
        _validate_source(item)
    backend_config(target.backend)
    now = timezone.now()
    rows = [
        ClassificationRequest(
            owner=owner,
            model_id=target.model_id,
            model_key=target.key,
            revision=target.revision,
            text=item.text,
            text_hash=text_hash(item.text),
            function_to_apply=parameters.function_to_apply or "",
            top_k=parameters.top_k,
            use_cache=use_cache,
            backend=target.backend,
            created_at=now,
            next_attempt_at=now,
            **_source_fields(item),
        )
        for item in items
    ]
    if plans is None and len(rows) == 1:
        # One INSERT is atomic on its own; a transaction of ours around it would only add
        # a BEGIN and a COMMIT, two round trips to the database on every single-text
        # submit. Inside the caller's transaction it joins that one, as bulk_create does.
        rows[0].save(force_insert=True)
        wake = rows
    else:
        with transaction.atomic():
            if plans is None:
                rows = wake = ClassificationRequest.objects.bulk_create(rows)
            else:  # truncated texts, and split texts stored as a parent with chunks
                rows, wake = chunks.store(rows, plans)
    # Sent once the caller's transaction commits, or at once when there is none.
    dispatch.on_commit([row.pk for row in wake])
    return rows


def _validate_owner(owner):
    """``owner`` is None or a saved user (an unsaved or anonymous one cannot be stored)."""
    if owner is None:
        return
    user_model = ClassificationRequest._meta.get_field("owner").related_model
    if not isinstance(owner, user_model) or owner.pk is None:
        raise InvalidInputError("owner", "must be a saved user or None")


def _validate_source(item):
    """The source is a saved model instance whose key and field name fit their columns."""
    if item.source is None:
        return
    if not isinstance(item.source, models.Model):
        raise InvalidInputError("source", "must be a model instance or None")
    pk = item.source.pk
    if pk is None:
        raise InvalidInputError("source", "must be saved first (it has no primary key)")
    key = str(pk)
    if len(key) > OBJECT_ID_LENGTH or "\x00" in key or has_lone_surrogate(key):
        raise InvalidInputError(
            "source",
            f"has a primary key that cannot be stored (at most {OBJECT_ID_LENGTH} "
            "characters, no NUL or lone surrogate)",
        )
    field = item.source_field
    if not isinstance(field, str):
        raise InvalidInputError("source_field", "must be a string")
    if len(field) > SOURCE_FIELD_LENGTH or "\x00" in field or has_lone_surrogate(field):
        raise InvalidInputError(
            "source_field",
            f"must be at most {SOURCE_FIELD_LENGTH} characters, with no NUL or lone surrogate",
        )


def _source_fields(item):
    if item.source is None:
        return {}
    return {
        "content_type": ContentType.objects.get_for_model(item.source),
        "object_id": str(item.source.pk),
        "source_field": item.source_field,
    }
