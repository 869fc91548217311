"""What the REST API tests share: the URLs, an authenticated client, stored rows."""

import itertools
from datetime import timedelta

from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from django_textclass.models import ClassificationRequest, ClassificationScore, Status, text_hash

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
LIST_URL = "/api/classifications/"


def client_for(user):
    """An API client that authenticates as ``user`` with a real DRF token."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


_texts = itertools.count()


def stored(
    owner,
    *,
    status=Status.PENDING,
    text=None,
    model=MODEL,
    labels=None,
    created_at=None,
    error_code="",
    **fields,
):
    """A request row in a given state, written directly (test set-up, not a transition)."""
    text = text or f"text number {next(_texts)}"
    now = timezone.now()
    created_at = created_at or now
    finished = status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    labels = (
        labels
        if labels is not None
        else ([("POSITIVE", 0.9), ("NEGATIVE", 0.1)] if status == Status.SUCCEEDED else [])
    )
    row = ClassificationRequest.objects.create(
        owner=owner,
        model_id=model,
        text=text,
        text_hash=text_hash(text),
        status=status,
        backend="default",
        created_at=created_at,
        started_at=created_at + timedelta(milliseconds=50) if finished else None,
        finished_at=created_at + timedelta(milliseconds=400) if finished else None,
        attempts=1 if finished else 0,
        error_code=error_code,
        error_message=f"failed with {error_code}" if error_code else "",
        top_label=labels[0][0] if labels else "",
        top_score=labels[0][1] if labels else None,
        backend_ms=300 if status == Status.SUCCEEDED else None,
        **{"next_attempt_at": None if finished else now, **fields},
    )
    ClassificationScore.objects.bulk_create(
        ClassificationScore(request=row, rank=rank, label=label, score=score)
        for rank, (label, score) in enumerate(labels)
    )
    return row


def detail_url(row):
    return f"{LIST_URL}{row.uuid}/"
