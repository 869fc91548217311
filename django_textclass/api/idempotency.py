"""``Idempotency-Key``: a retried POST returns the requests the first one created.

A client that did not get an answer (timeout, dropped connection) can send the
same POST again with the same key and gets the original requests back instead of
new ones. Keys are per user, remembered for ``TEXTCLASS["API_IDEMPOTENCY_TTL"]``
seconds, and bound to the body they were first used with: the same key with a
different body answers 422 rather than unrelated requests.
"""

import hashlib
import json
import string
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from django_textclass.api.exceptions import IdempotencyKeyReused
from django_textclass.conf import app_settings
from django_textclass.models import ClassificationRequest, IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Visible ASCII: keys are usually UUIDs or random tokens, and this keeps them loggable.
_KEY_CHARACTERS = frozenset(string.ascii_letters + string.digits + string.punctuation)
#: Body keys that do not change what a submission creates, left out of the fingerprint.
IGNORED_KEYS = ("wait",)


def key_from(request):
    """The request's ``Idempotency-Key``, or None when it has none.

    Raises:
        ValidationError: (400) the key is empty, too long, has characters other
            than visible ASCII, or the caller is anonymous (keys are per user).
    """
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not set(key) <= _KEY_CHARACTERS:
        raise ValidationError(
            {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} visible ASCII characters, e.g. a UUID."]}
        )
    if not request.user.is_authenticated:
        raise ValidationError({HEADER: ["Needs an authenticated user; keys are per user."]})
    return key


def fingerprint(data):
    """SHA-256 of the body in a canonical JSON form (key order and spacing do not matter)."""
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if key not in IGNORED_KEYS}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def submit_once(owner, key, body, submit):
    """Run ``submit()`` once per ``(owner, key)``; a repeat gets the first run's requests.

    Args:
        owner: the authenticated user.
        key: the client's key (see :func:`key_from`).
        body: the parsed request body, whose fingerprint the key is bound to.
        submit: a callable that stores the requests and returns them as a list.

    Returns:
        ``(requests, replayed)``: the requests in their original order, and whether
        they come from an earlier call.

    Raises:
        IdempotencyKeyReused: (422) the key was first used with a different body.
    """
    digest = fingerprint(body)
    try:
        with transaction.atomic():
            record = _live(owner, key)
            if record is None:
                # An expired record of the same key would violate the unique constraint.
                IdempotencyKey.objects.filter(owner=owner, key=key).delete()
                rows = submit()
                IdempotencyKey.objects.create(
                    owner=owner,
                    key=key,
                    fingerprint=digest,
                    request_uuids=[str(row.uuid) for row in rows],
                )
                return rows, False
    except IntegrityError:
        # A concurrent call with the same key committed first: its transaction (and
        # this call's rows, rolled back with ours) decide. Answer with its requests.
        record = _live(owner, key)
        if record is None:  # pragma: no cover - the winner's record cannot vanish this fast
            raise
    if record.fingerprint != digest:
        raise IdempotencyKeyReused()
    by_uuid = {
        str(row.uuid): row
        for row in ClassificationRequest.objects.filter(uuid__in=record.request_uuids)
    }
    return [by_uuid[uuid] for uuid in record.request_uuids if uuid in by_uuid], True


def _live(owner, key):
    """The unexpired record of ``(owner, key)``, or None."""
    since = timezone.now() - timedelta(seconds=app_settings.API_IDEMPOTENCY_TTL)
    return IdempotencyKey.objects.filter(owner=owner, key=key, created_at__gte=since).first()
