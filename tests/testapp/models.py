"""Models the content tests classify; they stand in for a site's own models."""

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
