"""Fixtures of the REST API tests: users, authenticated clients, stored requests."""

import itertools
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from django_textclass.models import ClassificationRequest, ClassificationScore, Status, text_hash

MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
LIST_URL = "/api/classifications/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttle_counters():
    """Throttle counters live in a file cache that outlives each test's transaction."""
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pw")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pw")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", password="staff-pw", is_staff=True)


def client_for(user):
    """An API client that authenticates as ``user`` with a real DRF token."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(alice):
    """Alice's client."""
    return client_for(alice)


@pytest.fixture
def bob_api(bob):
    return client_for(bob)


@pytest.fixture
def staff_api(staff):
    return client_for(staff)


_texts = itertools.count()


def stored(owner, *, status=Status.PENDING, text=None, model=MODEL, labels=None,
           created_at=None, error_code="", **fields):
    """A request row in a given state, written directly (test set-up, not a transition)."""
    text = text or f"text number {next(_texts)}"
    now = timezone.now()
    created_at = created_at or now
    finished = status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    labels = labels if labels is not None else (
        [("POSITIVE", 0.9), ("NEGATIVE", 0.1)] if status == Status.SUCCEEDED else []
    )
    row = ClassificationRequest.objects.create(
        owner=owner, model_id=model, text=text, text_hash=text_hash(text), status=status,
        backend="default", created_at=created_at,
        started_at=created_at + timedelta(milliseconds=50) if finished else None,
        finished_at=created_at + timedelta(milliseconds=400) if finished else None,
        attempts=1 if finished else 0, error_code=error_code,
        error_message=f"failed with {error_code}" if error_code else "",
        top_label=labels[0][0] if labels else "", top_score=labels[0][1] if labels else None,
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
