"""Signals owed for final results: written with the status change, sent after commit."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_textclass.models.history import ClassificationRequest


class Notification(models.Model):
    """One ``classification_succeeded`` or ``classification_failed`` still to be sent.

    Written in the transaction that made the request final, so a result is never stored
    without its notification; deleted once sent. The process that wrote it sends it right
    after commit; if that process died first, the sweep sends it once ``due_at`` has passed.
    Only written while some receiver listens to the signal.
    """

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    request = models.ForeignKey(
        ClassificationRequest,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("request"),
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    due_at = models.DateTimeField(
        _("due"),
        help_text=_("Until then the process that wrote it sends it; after, the sweep."),
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [models.Index(fields=["due_at"], name="textclass_notify_due")]

    def __str__(self):
        return f"{self.outcome} {self.request_id}"
