"""The pacing state of each backend: when the next call may go, and the circuit breaker.

One row per backend alias (``model_id = ""``) holds what the whole backend is told (a rate
limit, an outage's circuit breaker); one row per (alias, model) holds what a model is told
(a 503 while it loads). Every worker process on every host reads the same rows before each
call, so a limit one of them meets holds for all. Only
:mod:`django_textclass.services.pacing` writes them.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class BackendPace(models.Model):
    """A "not before" time and a circuit breaker, for a backend or one of its models."""

    class Circuit(models.TextChoices):
        CLOSED = "closed", _("closed: calls go")
        OPEN = "open", _("open: no call before the time given")
        HALF_OPEN = "half_open", _("half open: one probe call is out")

    backend = models.CharField(_("backend alias"), max_length=100)
    model_id = models.CharField(
        _("model id"),
        max_length=200,
        blank=True,
        help_text=_(
            "Empty for the whole backend (rate limits, outages); a model id for what "
            "one model is told (a 503 while it loads)."
        ),
    )
    not_before = models.DateTimeField(
        _("not before"),
        null=True,
        blank=True,
        help_text=_("No call goes before this time, from any worker."),
    )
    reason = models.CharField(
        _("reason"),
        max_length=64,
        blank=True,
        help_text=_("Why the last wait was set: rate_limited, model_loading, circuit_open."),
    )
    circuit = models.CharField(
        _("circuit"),
        max_length=16,
        choices=Circuit.choices,
        default=Circuit.CLOSED,
    )
    failures = models.PositiveIntegerField(
        _("failures in a row"),
        default=0,
        help_text=_(
            "Calls that failed in a row (connection errors, timeouts, 5xx), across "
            "all workers; CIRCUIT_FAILURES of them open the circuit."
        ),
    )
    opened = models.PositiveIntegerField(
        _("openings in a row"),
        default=0,
        help_text=_(
            "How many times the circuit opened without a success in between; each "
            "opening waits twice as long as the last, up to CIRCUIT_OPEN_MAX."
        ),
    )
    probe_until = models.DateTimeField(
        _("probe until"),
        null=True,
        blank=True,
        help_text=_(
            "While half open: the probe call's deadline; past it, another worker may probe."
        ),
    )
    last_error = models.CharField(_("last error"), max_length=64, blank=True)
    window_start = models.DateTimeField(
        _("rate window"),
        null=True,
        blank=True,
        help_text=_("Start of the current window of the backend's own RATE_LIMIT."),
    )
    window_calls = models.PositiveIntegerField(
        _("calls in the window"),
        default=0,
        help_text=_("Calls sent in that window, by all workers together."),
    )
    batch_limit = models.PositiveIntegerField(
        _("batch limit"),
        null=True,
        blank=True,
        help_text=_(
            "Learnt from the endpoint: the most texts per call it accepted after it "
            "refused a bigger batch. Empty: the backend's own MAX_BATCH_SIZE."
        ),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("backend pace")
        verbose_name_plural = _("backend paces")
        constraints = [
            models.UniqueConstraint(
                fields=["backend", "model_id"], name="textclass_pace_backend_model_uniq"
            ),
        ]

    def __str__(self):
        target = f"{self.backend} {self.model_id}" if self.model_id else self.backend
        return f"{target}: {self.circuit}"
