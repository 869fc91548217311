"""The REST API's ``Idempotency-Key`` records: what a key's first submission created."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key``: a retried submission returns the original requests.

    The fingerprint of the first body is kept, so the same key with a different body
    can be refused rather than silently answered with unrelated requests.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    key = models.CharField(_("key"), max_length=255)
    fingerprint = models.CharField(
        _("fingerprint"),
        max_length=64,
        help_text=_("SHA-256 of the first request's body."),
    )
    request_uuids = models.JSONField(
        _("request ids"),
        default=list,
        help_text=_("Public ids of the requests the first submission created, in order."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="textclass_idem_owner_key_uniq"),
        ]
        indexes = [models.Index(fields=["created_at"], name="textclass_idem_created")]

    def __str__(self):
        return self.key
