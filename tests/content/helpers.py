"""What the registered-content tests share: the test models' Hub ids, an object's requests."""

from django.contrib.contenttypes.models import ContentType

from django_textclass.models import ClassificationRequest
from tests.testapp.apps import OTHER, SENTIMENT

__all__ = ["OTHER", "SENTIMENT", "requests_of"]


def requests_of(obj):
    """The top-level requests of ``obj``, oldest first."""
    return list(
        ClassificationRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(obj),
            object_id=str(obj.pk),
        ).order_by("pk")
    )
