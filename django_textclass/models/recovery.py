"""When the sweep last ran, so that busy workers run it themselves when beat's is late."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class SweepRun(models.Model):
    """One row: the last time any process ran :func:`~django_textclass.services.sweep`.

    Beat's ``django_textclass.sweep`` message waits in the queue behind whatever backlog is
    there. A worker that finishes a task checks this row (at most every ``SWEEP_INTERVAL``
    seconds per process); if no sweep ran for that long, one worker wins a guarded
    ``UPDATE`` and sweeps, so recovery never waits behind work.
    """

    name = models.CharField(_("name"), max_length=32, unique=True, default="sweep")
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)

    class Meta:
        verbose_name = _("sweep run")
        verbose_name_plural = _("sweep runs")

    def __str__(self):
        return f"{self.name}: {self.last_run_at}"
