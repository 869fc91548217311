"""What happened to a request between its claim and its end: each wait and retry, and why."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_textclass.models.history import ClassificationRequest


class RequestEvent(models.Model):
    """One wait or retry of a request, shown on its admin page and in the API's detail.

    Written by :mod:`django_textclass.services.settling` with the status change it explains:
    a retry spent an attempt (the text's own error); a wait did not (a rate limit, a loading
    model, an open circuit, a twin in flight, a batch bisected, a broken database link).
    """

    class Kind(models.TextChoices):
        RETRY = "retry", _("retry: an attempt spent")
        WAIT = "wait", _("wait: no attempt spent")

    request = models.ForeignKey(
        ClassificationRequest,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("request"),
    )
    at = models.DateTimeField(_("when"), default=timezone.now)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    reason = models.CharField(
        _("reason"),
        max_length=64,
        help_text=_(
            "The error code of a retry; for a wait: rate_limited, rate_limit, "
            "model_loading, circuit_open, bisecting, twin_in_flight, database_error."
        ),
    )
    attempts = models.PositiveSmallIntegerField(_("attempts so far"), default=0)
    wait_seconds = models.FloatField(_("wait (s)"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("request event")
        verbose_name_plural = _("request events")
        indexes = [models.Index(fields=["request", "at"], name="textclass_event_request")]

    def __str__(self):
        return f"{self.kind} {self.reason}"
