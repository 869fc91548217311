"""The daily roll-up's tables (see :mod:`django_textclass.rollup`)."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_textclass.models.status import Status


class RollupDay(models.Model):
    """A UTC day whose requests are summed in :class:`RollupCount` and :class:`RollupHistogram`.

    ``rolled_at`` is None while the day is being rolled for the first time (or was
    left half-done by a crash): such a day is read from the requests table.
    """

    day = models.DateField(_("day (UTC)"), primary_key=True)
    rolled_at = models.DateTimeField(_("rolled"), null=True, blank=True)
    requests = models.PositiveIntegerField(_("requests"), default=0)

    class Meta:
        verbose_name = _("rolled-up day")
        verbose_name_plural = _("rolled-up days")
        ordering = ["-day"]

    def __str__(self):
        return f"{self.day} ({self.requests})"


class RollupDirtyDay(models.Model):
    """A UTC day whose requests changed after it was rolled up: read live until rolled again.

    Written in the same transaction as the change (see ``ClassificationRequestQuerySet``),
    so a change the roll-up did not see always leaves its marker behind.
    """

    day = models.DateField(_("day (UTC)"), primary_key=True)
    marked_at = models.DateTimeField(_("marked"), default=timezone.now)

    class Meta:
        verbose_name = _("changed rolled-up day")
        verbose_name_plural = _("changed rolled-up days")

    def __str__(self):
        return str(self.day)

    @classmethod
    def mark(cls, days, *, using):
        """Mark ``days`` changed (read live until rolled again), in the caller's transaction."""
        if days:
            cls.objects.using(using).bulk_create(
                [cls(day=day) for day in days], ignore_conflicts=True
            )


class RollupCount(models.Model):
    """How many requests of one day share a creation hour, finish hour, model, status and label."""

    day = models.DateField(_("day (UTC)"))
    hour = models.DateTimeField(_("created in hour"))
    finished_hour = models.DateTimeField(_("finished in hour"), null=True, blank=True)
    model_id = models.CharField(_("model"), max_length=200)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    top_label = models.CharField(_("top label"), max_length=200, blank=True)
    requests = models.PositiveIntegerField(_("requests"))

    class Meta:
        verbose_name = _("roll-up count")
        verbose_name_plural = _("roll-up counts")
        indexes = [
            models.Index(fields=["day"], name="textclass_rollcount_day"),
            models.Index(fields=["model_id", "day"], name="textclass_rollcount_model"),
        ]

    def __str__(self):
        return f"{self.hour:%Y-%m-%d %H}h {self.model_id} {self.status} {self.top_label}"


class RollupHistogram(models.Model):
    """Succeeded requests of one day, model and top label, counted per bin of one metric.

    ``score`` bins are the dashboard's ten equal bins of ``top_score``; ``latency`` and
    ``backend`` (milliseconds) use logarithmic bins from which percentiles are read to
    within 1 % (see :mod:`django_textclass.rollup`).
    """

    class Metric(models.TextChoices):
        SCORE = "score", _("top score")
        LATENCY = "latency", _("submission to result (ms)")
        BACKEND = "backend", _("backend call (ms)")

    day = models.DateField(_("day (UTC)"))
    model_id = models.CharField(_("model"), max_length=200)
    top_label = models.CharField(_("top label"), max_length=200, blank=True)
    metric = models.CharField(_("metric"), max_length=8, choices=Metric.choices)
    bin = models.IntegerField(_("bin"))
    requests = models.PositiveIntegerField(_("requests"))

    class Meta:
        verbose_name = _("roll-up histogram bin")
        verbose_name_plural = _("roll-up histogram bins")
        indexes = [
            models.Index(fields=["day"], name="textclass_rollhist_day"),
            models.Index(fields=["model_id", "day"], name="textclass_rollhist_model"),
        ]

    def __str__(self):
        return f"{self.day} {self.model_id} {self.top_label} {self.metric}[{self.bin}]"
