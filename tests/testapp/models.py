"""Models the content tests classify; they stand in for a site's own models."""

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from django_textclass.content import ClassificationResults, ClassifiedQuerySet


class Comment(models.Model):
    """Registered in code (apps.py): title and body, two models, threshold rules."""

    title = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ClassifiedQuerySet.as_manager()
    textclass = ClassificationResults()

    def __str__(self):
        return self.title or f"comment {self.pk}"


class Post(models.Model):
    """A string primary key, to prove the object-id cast on both databases."""

    slug = models.CharField(max_length=50, primary_key=True)
    body = models.TextField(blank=True)

    objects = ClassifiedQuerySet.as_manager()

    def __str__(self):
        return self.slug


class Ticket(models.Model):
    """Registered with the split policy (short chunks), for the worker tests."""

    body = models.TextField()

    def __str__(self):
        return f"ticket {self.pk}"


class Note(models.Model):
    """Not registered by default: tests register it with the options they need."""

    text = models.TextField(blank=True)
    public = models.BooleanField(default=True)

    def __str__(self):
        return f"note {self.pk}"

    @property
    def shout(self):
        """A registered attribute need not be a field."""
        return self.text.upper()


class SignalLog(models.Model):
    """What the app's signals delivered, written by receivers in every process."""

    kind = models.CharField(max_length=20)
    request_uuid = models.UUIDField()
    object_id = models.CharField(max_length=64, blank=True)
    has_source = models.BooleanField(default=False)
    label = models.CharField(max_length=200, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.kind} {self.request_uuid}"


class BareSubmission(models.Model):
    """The benchmark's baseline: what a single submit stores, as a developer would model it.

    ``benchmarks/pipeline.py`` times a stock DRF ``ModelViewSet`` create of this model
    (``tests/testapp/bare.py``) against ``POST /api/classifications/``. It holds the same
    data a single submit writes (text, its hash, model id, status, owner, timestamps,
    parameters) with the same owner foreign key and the indexes of
    ``ClassificationRequest`` that cover these columns, so both inserts maintain
    comparable indexes. Columns the app has for later stages (results, leases, sources,
    chunks) are left out: a hand-written endpoint would not have them either.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    model_id = models.CharField(max_length=200)
    function_to_apply = models.CharField(max_length=8, blank=True)
    top_k = models.PositiveSmallIntegerField(null=True, blank=True)
    use_cache = models.BooleanField(default=True)
    text = models.TextField()
    text_hash = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=10, default="pending", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, default=timezone.now, editable=False
    )

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="bare_status_due"),
            models.Index(fields=["-created_at"], name="bare_created"),
            models.Index(fields=["owner", "-created_at"], name="bare_owner_created"),
            models.Index(fields=["model_id", "created_at"], name="bare_model_created"),
            models.Index(
                fields=["model_id", "next_attempt_at"],
                condition=models.Q(status="pending"),
                name="bare_pending",
            ),
        ]

    def __str__(self):
        return f"{self.model_id} {self.uuid}"

    def save(self, *args, **kwargs):
        """Keep the text's hash in step with the text (what the app stores for its cache)."""
        self.text_hash = hashlib.sha256(self.text.encode("utf-8")).hexdigest()
        super().save(*args, **kwargs)
