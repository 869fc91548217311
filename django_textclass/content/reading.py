"""Reading the results of registered content, for your views and templates.

* :func:`latest_results` / :class:`ClassificationResults` (a descriptor you put on your
  model): the latest succeeded result per model for one object;
* :func:`with_label` / :class:`ClassifiedQuerySet`: objects whose latest result for a model
  has a given top label with at least a given score, in one SQL query.

A source object is linked to its requests by ``content_type`` + ``object_id`` (the primary
key as a string) + ``source_field``. Chunks of a split text are not linked (only their
parent is), so every query here sees one request per submission.
"""

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import CharField, Exists, F, OuterRef, Subquery, Window
from django.db.models.functions import Cast, RowNumber

from django_textclass.models import ClassificationRequest, Status
from django_textclass.models.querysets import model_name


def latest_results(obj, model=None, *, field=None):
    """The latest succeeded result per model for ``obj`` (two queries: rows + scores).

    Args:
        obj: a model instance.
        model: a Hub model id or a key of ``TEXTCLASS["MODELS"]``: return only that
            model's request (or None).
        field: only results of this source field (default: any registered field).

    Returns:
        ``{name: ClassificationRequest}`` (scores prefetched), where a request submitted
        with a key is found under the key and any other under its model id; or one
        request / None when ``model`` is given.
    """
    requests = ClassificationRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        status=Status.SUCCEEDED,
        parent__isnull=True,
    )
    if field is not None:
        requests = requests.filter(source_field=field)
    if model is not None:
        requests = requests.named([model])
    latest = (
        requests.annotate(textclass_name=model_name())
        .annotate(
            textclass_rank=Window(
                RowNumber(),
                partition_by=[F("textclass_name")],
                order_by=[F("created_at").desc(), F("pk").desc()],
            )
        )
        .filter(textclass_rank=1)
        .prefetch_related("scores")
    )
    by_model = {request.textclass_name: request for request in latest}
    return by_model.get(model) if model is not None else by_model


def with_label(queryset, model, label, min_score=0.0, *, field=None):
    """Filter ``queryset`` to objects whose latest result for ``model`` is ``label``.

    "Latest result" is the newest succeeded request of the object for that model
    (of ``field`` if given); it matches when its top label is ``label`` and its top
    score is at least ``min_score``. The whole filter is one SQL query: a
    correlated subquery picks the latest request per object (its primary key cast
    to text, the way ``object_id`` stores it) and ``EXISTS`` tests its label.

    Returns:
        A queryset of the same model.
    """
    content_type = ContentType.objects.get_for_model(queryset.model)
    latest = ClassificationRequest.objects.named([model]).filter(
        content_type=content_type,
        object_id=Cast(OuterRef(OuterRef("pk")), output_field=CharField()),
        status=Status.SUCCEEDED,
        parent__isnull=True,
    )
    if field is not None:
        latest = latest.filter(source_field=field)
    latest = latest.order_by("-created_at", "-pk").values("pk")[:1]
    matching = ClassificationRequest.objects.filter(
        pk=Subquery(latest), top_label=label, top_score__gte=min_score
    )
    return queryset.filter(Exists(matching))


def _latest_of_each(queryset, model, field):
    """Succeeded requests of ``model`` for each row of ``queryset``, newest first."""
    latest = ClassificationRequest.objects.named([model]).filter(
        content_type=ContentType.objects.get_for_model(queryset.model),
        object_id=Cast(OuterRef("pk"), output_field=CharField()),
        status=Status.SUCCEEDED,
        parent__isnull=True,
    )
    if field is not None:
        latest = latest.filter(source_field=field)
    return latest.order_by("-created_at", "-pk")


def annotate_latest(queryset, model, *, field=None):
    """Add ``textclass_label`` and ``textclass_score``: the latest result for ``model``.

    For list pages: the values come in the same query as the objects (two
    correlated subqueries), None where there is no result yet.
    """
    latest = _latest_of_each(queryset, model, field)
    return queryset.annotate(
        textclass_label=Subquery(latest.values("top_label")[:1]),
        textclass_score=Subquery(latest.values("top_score")[:1]),
    )


class ClassifiedQuerySet(models.QuerySet):
    """A QuerySet with :meth:`with_label`; use ``ClassifiedQuerySet.as_manager()``."""

    def with_label(self, model, label, min_score=0.0, *, field=None):
        """See :func:`django_textclass.content.with_label`."""
        return with_label(self, model, label, min_score, field=field)

    def annotate_latest(self, model, *, field=None):
        """See :func:`django_textclass.content.annotate_latest`."""
        return annotate_latest(self, model, field=field)


class ResultsAccessor:
    """What ``obj.<name>`` returns for a :class:`ClassificationResults` descriptor."""

    def __init__(self, obj):
        self.obj = obj

    def all(self):
        """Every request of the object (any status, newest first)."""
        return ClassificationRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(self.obj),
            object_id=str(self.obj.pk),
            parent__isnull=True,
        )

    def latest(self, model=None, *, field=None):
        """See :func:`latest_results`."""
        return latest_results(self.obj, model, field=field)


class ClassificationResults:
    """A descriptor giving an object its results, with no schema change.

    Example::

        class Comment(models.Model):
            body = models.TextField()
            textclass = ClassificationResults()

        comment.textclass.latest()            # {model_id: request}
        comment.textclass.latest("owner/m")   # the request, or None
        comment.textclass.all()               # every request, newest first
    """

    def __get__(self, obj, owner=None):
        return self if obj is None else ResultsAccessor(obj)
