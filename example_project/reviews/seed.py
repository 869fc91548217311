"""A month of product reviews and comments for the demo (``rundemo`` calls :func:`seed`).

Every review and comment is saved as a site saves one, so the registry creates its
classification request in the save's transaction. The month's history is then classified at
once, in this process, by the pipeline's own worker code (``services.process``, the body of
the Celery task) with the configured backend, and each request's timestamps are moved back to
when its review was written: its latency is the one measured now, only its day is in the past.
The newest reviews are left pending for the demo's Celery worker, which classifies them as soon
as it starts. The texts and their dates come from :mod:`reviews.texts`.
"""

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from django_textclass import rollup, services
from django_textclass.models import TERMINAL_STATUSES, ClassificationRequest
from reviews import texts
from reviews.models import Comment, Product, Review

#: Reviews (of the newest) left for the Celery worker to classify when the demo starts.
LIVE = 12
#: Request ids per run of the worker's code (the task's own BATCH_SIZE).
CHUNK = 128


def seed(now=None, days=30):
    """Create the demo's reviews unless there are some already. Returns how many reviews."""
    if Review.objects.exists():
        return 0
    now = now or timezone.now()
    planned = texts.plan(now, days=days)
    history, live = planned[:-LIVE], planned[-LIVE:]
    products = {name: Product.objects.create(name=name) for name in texts.PRODUCTS}
    by_day = {}
    for review in history:
        by_day.setdefault(review["created_at"].date(), []).append(review)
    for reviews in by_day.values():  # a day at a time, as the worker would have kept up
        written = _save(reviews, products)
        classify_now()
        _move_back(written)
    _save(live, products)
    rollup.roll()  # the closed days, as beat's roll-up task would sum them
    return len(planned)


def _save(reviews, products):
    """Save the reviews and their comments; returns ``{(model, pk): created_at}``."""
    written = {}
    with transaction.atomic():  # the wake-ups go out once, at the commit
        for planned in reviews:
            review = Review.objects.create(
                product=products[planned["product"]],
                author=planned["author"],
                rating=planned["rating"],
                body=planned["body"],
                created_at=planned["created_at"],
            )
            written[(Review, review.pk)] = review.created_at
            for comment in planned["comments"]:
                saved = Comment.objects.create(
                    review=review,
                    author=comment["author"],
                    body=comment["body"],
                    created_at=comment["created_at"],
                )
                written[(Comment, saved.pk)] = saved.created_at
    return written


def classify_now():
    """Run the worker's code over the due requests until none is left.

    A request the backend could not answer yet (the real API loading its model, a rate
    limit) waits for a later attempt: it is left to the Celery worker.
    """
    while ids := list(
        ClassificationRequest.objects.due(timezone.now())
        .order_by("pk")
        .values_list("pk", flat=True)[:CHUNK]
    ):
        if not services.process(ids):
            break


def _move_back(written):
    """Give each request its object's day, keeping the latency it was classified with.

    Only final requests move: one left to the worker stays today's, as it will be answered.
    """
    types = {model: ContentType.objects.get_for_model(model) for model in (Review, Comment)}
    by_type = {ct.pk: model for model, ct in types.items()}
    rows = []
    for row in ClassificationRequest.objects.filter(
        content_type__in=types.values(),
        created_at__gt=min(written.values()),
        status__in=TERMINAL_STATUSES,
    ):
        when = written.get((by_type[row.content_type_id], int(row.object_id)))
        if when is None:
            continue
        rows.append(row)
        shift = when - row.created_at
        row.created_at = when
        row.started_at = row.started_at and row.started_at + shift
        row.finished_at = row.finished_at and row.finished_at + shift
    ClassificationRequest.objects.bulk_update(
        rows, ["created_at", "started_at", "finished_at"], batch_size=500
    )
