"""The history: requests and their ``{label, score}`` rows."""

import hashlib
import uuid

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from django_textclass.models.querysets import ClassificationRequestQuerySet
from django_textclass.models.rollup import RollupDirtyDay
from django_textclass.models.status import TERMINAL_STATUSES, Status
from django_textclass.rollup.days import days_of
from django_textclass.types import FUNCTIONS_TO_APPLY, Parameters


def text_hash(text):
    """The SHA-256 hex digest of ``text`` (UTF-8), used to find identical texts."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ClassificationRequest(models.Model):
    """One text to classify with one model, from submission to its final state.

    The row is the source of truth: it exists, with a status, from the moment the
    text is submitted; the Celery broker only carries wake-up calls. State changes
    go through :mod:`django_textclass.services`, never through direct writes.
    """

    Status = Status

    uuid = models.UUIDField(
        _("public id"),
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text=_("Identifier shown in URLs and APIs; the numeric id stays internal."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="textclass_requests",
        verbose_name=_("owner"),
        help_text=_("User who submitted the text; empty for background classification."),
    )
    model_id = models.CharField(
        _("model"),
        max_length=200,
        help_text=_(
            "Hugging Face Hub repository id of the classifier, e.g. owner/name (or "
            "the URL of a dedicated endpoint, named by a model key)."
        ),
    )
    model_key = models.CharField(
        _("model key"),
        max_length=64,
        blank=True,
        help_text=_(
            "The TEXTCLASS['MODELS'] key the text was submitted with; empty when a "
            "model id was named."
        ),
    )
    revision = models.CharField(
        _("revision"),
        max_length=100,
        blank=True,
        help_text=_(
            "The model revision of the key (a branch, tag or commit); part of the "
            "result-cache key. Empty: none named."
        ),
    )
    function_to_apply = models.CharField(
        _("function to apply"),
        max_length=8,
        blank=True,
        choices=[(name, name) for name in FUNCTIONS_TO_APPLY],
        help_text=_("sigmoid, softmax or none; empty uses the model's default."),
    )
    top_k = models.PositiveSmallIntegerField(
        _("top k"),
        null=True,
        blank=True,
        help_text=_("Keep only the K most probable labels; empty keeps them all."),
    )
    use_cache = models.BooleanField(
        _("use cache"),
        default=True,
        help_text=_("Reuse a stored result for the same text, and let the API use its cache."),
    )
    text = models.TextField(_("text"))
    text_hash = models.CharField(
        _("text hash"),
        max_length=64,
        editable=False,
        help_text=_("SHA-256 of the text; identical texts share a cached result."),
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=Status.choices,
        default=Status.PENDING,
    )
    attempts = models.PositiveSmallIntegerField(
        _("attempts"),
        default=0,
        help_text=_(
            "Calls spent on this request so far. Waits the backend imposes on every "
            "caller (a rate limit, a loading model, an outage) are not counted."
        ),
    )
    batch_limit = models.PositiveSmallIntegerField(
        _("batch limit"),
        null=True,
        blank=True,
        help_text=_(
            "Most texts this request may share a call with. A batch that failed twice "
            "is sent in halves, so a text that makes the API fail ends up alone."
        ),
    )
    error_code = models.CharField(
        _("error code"),
        max_length=64,
        blank=True,
        help_text=_("Why the last attempt failed, e.g. http_503, timeout, retries_exhausted."),
    )
    error_message = models.TextField(_("error message"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    started_at = models.DateTimeField(
        _("started"),
        null=True,
        blank=True,
        help_text=_("When the last attempt started."),
    )
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        _("next attempt"),
        null=True,
        blank=True,
        default=timezone.now,
        help_text=_("A pending request is not sent before this time (retry backoff)."),
    )
    lease_expires_at = models.DateTimeField(
        _("lease expires"),
        null=True,
        blank=True,
        help_text=_("A running request still running after this is handed back by the sweep."),
    )
    claim_token = models.UUIDField(
        _("claim token"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Which worker run owns the request while it is running."),
    )
    top_label = models.CharField(_("top label"), max_length=200, blank=True)
    top_score = models.FloatField(_("top score"), null=True, blank=True)
    backend = models.CharField(
        _("backend"),
        max_length=100,
        blank=True,
        help_text=_("Alias of the TEXTCLASS backend that serves the request."),
    )
    backend_ms = models.PositiveIntegerField(
        _("backend time (ms)"),
        null=True,
        blank=True,
        help_text=_("Duration of the backend call that answered, in milliseconds."),
    )
    reused_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reused from"),
        help_text=_("The earlier request whose stored result answered this one (cache hit)."),
    )
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        verbose_name=_("source type"),
    )
    object_id = models.CharField(_("source id"), max_length=64, blank=True)
    source_field = models.CharField(
        _("source field"),
        max_length=100,
        blank=True,
        help_text=_("Field of the source object that held the text."),
    )
    # --- background classification of registered content (docs/content.md) ---
    source_hash = models.CharField(
        _("source text hash"),
        max_length=64,
        blank=True,
        editable=False,
        help_text=_(
            "SHA-256 of the source text before any long-text policy; a save with the "
            "same hash is not classified again."
        ),
    )
    source_length = models.PositiveIntegerField(
        _("source length"),
        null=True,
        blank=True,
        help_text=_("Length of the source text in characters, before any long-text policy."),
    )
    long_text_policy = models.CharField(
        _("long-text policy"),
        max_length=32,
        blank=True,
        help_text=_(
            "Policy the text was submitted under: reject, truncate_head, "
            "truncate_head_tail, split_mean or split_max; empty for none."
        ),
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="chunks",
        verbose_name=_("split from"),
        help_text=_("The long text this request is one chunk of (split policy)."),
    )
    chunk_index = models.PositiveSmallIntegerField(
        _("chunk"),
        null=True,
        blank=True,
        help_text=_("Position of the chunk, from 0."),
    )
    source = GenericForeignKey("content_type", "object_id")

    objects = ClassificationRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("classification request")
        verbose_name_plural = _("classification requests")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="textclass_req_status_due"),
            models.Index(fields=["-created_at"], name="textclass_req_created"),
            models.Index(fields=["owner", "-created_at"], name="textclass_req_owner_created"),
            # Serves per-model history (scanned backwards for newest first) and, holding
            # every column the dashboard aggregates, lets its charts read the index alone.
            models.Index(
                fields=[
                    "model_id",
                    "created_at",
                    "status",
                    "top_label",
                    "top_score",
                    "finished_at",
                    "backend_ms",
                ],
                name="textclass_req_model_dash",
            ),
            models.Index(fields=["model_id", "top_label"], name="textclass_req_model_label"),
            models.Index(fields=["content_type", "object_id"], name="textclass_req_source"),
            # A key's history, for textclass_reclassify and the filters by key (keyed rows
            # only: a site without a registry pays nothing for it).
            models.Index(
                fields=["model_key", "created_at"],
                condition=~models.Q(model_key=""),
                name="textclass_req_key",
            ),
            # Twins in a call right now (the worker's in-flight deduplication): running
            # rows only, so it stays as small as the work in progress.
            models.Index(
                fields=["text_hash", "model_id"],
                condition=models.Q(status="running"),
                name="textclass_req_in_flight",
            ),
            # The worker's top-up: the waiting rows of one model, the longest due first, read
            # in order (pending rows only: it is as small as the backlog).
            models.Index(
                fields=["model_id", "next_attempt_at"],
                condition=models.Q(status="pending"),
                name="textclass_req_pending",
            ),
            models.Index(
                fields=["text_hash", "model_id", "-finished_at"],
                condition=models.Q(status="succeeded"),
                name="textclass_req_cache",
            ),
            # The dashboard's failures by error code (the roll-up keeps no codes): the failed
            # rows of a window, counted, and the latest of each code found, from this index
            # alone (failed rows only: a few percent of the table).
            models.Index(
                fields=["created_at", "error_code", "finished_at"],
                condition=models.Q(status="failed"),
                name="textclass_req_failed",
            ),
        ]

    def __str__(self):
        return f"{self.model_id} {self.uuid} ({self.status})"

    def save(self, *args, **kwargs):
        """Save; a row of a past day also marks that day of the roll-up changed."""
        self._mark_rollup(
            lambda: super(ClassificationRequest, self).save(*args, **kwargs), kwargs.get("using")
        )

    save.alters_data = True

    def delete(self, *args, **kwargs):
        """Delete; a row of a past day also marks that day of the roll-up changed."""
        return self._mark_rollup(
            lambda: super(ClassificationRequest, self).delete(*args, **kwargs), kwargs.get("using")
        )

    delete.alters_data = True

    def _mark_rollup(self, write, using):
        days = days_of([self.created_at])
        if not days:
            return write()
        using = using or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            result = write()
            RollupDirtyDay.mark(days, using=using)
        return result

    @property
    def parameters(self):
        """The request's :class:`~django_textclass.types.Parameters`."""
        return Parameters(self.function_to_apply or None, self.top_k)

    @property
    def labels(self):
        """The answer as the API's own objects, best first: ``[{"label", "score"}, ...]``."""
        return [{"label": row.label, "score": row.score} for row in self.scores.all()]

    @property
    def is_finished(self):
        """Whether the request reached a final status."""
        return self.status in TERMINAL_STATUSES

    @property
    def duration(self):
        """Time from the last start to the finish, as a timedelta, or None."""
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class ClassificationScore(models.Model):
    """One ``{label, score}`` of an answer; ``rank`` 0 is the best label."""

    request = models.ForeignKey(
        ClassificationRequest,
        on_delete=models.CASCADE,
        related_name="scores",
        verbose_name=_("request"),
    )
    rank = models.PositiveSmallIntegerField(_("rank"), help_text=_("0 is the most probable label."))
    label = models.CharField(_("label"), max_length=200)
    score = models.FloatField(_("score"))

    class Meta:
        verbose_name = _("label score")
        verbose_name_plural = _("label scores")
        ordering = ["request", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["request", "rank"], name="textclass_score_rank_uniq"),
        ]
        indexes = [models.Index(fields=["label", "score"], name="textclass_score_label")]

    def __str__(self):
        return f"{self.label}: {self.score:.4f}"
