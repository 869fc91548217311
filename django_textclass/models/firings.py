"""The audit of threshold rules: one record per rule and result, kept after the request."""

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_textclass.models.history import ClassificationRequest


class RuleFiring(models.Model):
    """One firing of a threshold rule on one result, kept for audit.

    A rule fires at most once per request (unique ``rule`` + ``request_uuid``), and
    the record survives the request's deletion (the link is set to NULL; the
    request's public id, the source and the score stay).
    """

    class Outcome(models.TextChoices):
        STARTED = "started", _("started")
        OK = "ok", _("ok")
        ERROR = "error", _("error")

    rule = models.CharField(_("rule"), max_length=200, help_text=_("The rule's name."))
    request = models.ForeignKey(
        ClassificationRequest,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rule_firings",
        verbose_name=_("request"),
    )
    request_uuid = models.UUIDField(_("request id"), help_text=_("Public id of the request."))
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("source type"),
    )
    object_id = models.CharField(_("source id"), max_length=64, blank=True)
    model_id = models.CharField(_("model"), max_length=200)
    label = models.CharField(_("label"), max_length=200)
    score = models.FloatField(_("score"))
    min_score = models.FloatField(_("threshold"))
    action = models.CharField(_("action"), max_length=300, help_text=_("Dotted path called."))
    outcome = models.CharField(
        _("outcome"),
        max_length=8,
        choices=Outcome.choices,
        default=Outcome.STARTED,
    )
    error = models.TextField(_("error"), blank=True)
    fired_at = models.DateTimeField(_("fired"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("rule firing")
        verbose_name_plural = _("rule firings")
        ordering = ["-fired_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "request_uuid"], name="textclass_firing_once_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="textclass_firing_source"),
            models.Index(fields=["-fired_at"], name="textclass_firing_fired"),
        ]

    def __str__(self):
        return f"{self.rule}: {self.label} {self.score:.4f}"
