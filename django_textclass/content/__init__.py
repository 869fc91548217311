"""Registered content: a project's own models, classified in the background as they change.

The layer above the core; the core never imports it (docs/architecture.md).

* :mod:`~django_textclass.content.registration`: one model's registration, validated;
* :mod:`~django_textclass.content.registry`: the registrations (:data:`site`) and the
  receivers they connect (``post_save``, ``post_delete``, and the rules receiver of
  ``classification_succeeded``);
* :mod:`~django_textclass.content.sync`: submit an object's changed texts, forget a deleted one;
* :mod:`~django_textclass.content.reading`: the results, for views and templates;
* :mod:`~django_textclass.content.rules`: threshold rules and their firings.

The names below are importable from ``django_textclass.content`` itself, as before the
package was split.
"""

from django_textclass.content.reading import (
    ClassificationResults,
    ClassifiedQuerySet,
    ResultsAccessor,
    annotate_latest,
    latest_results,
    with_label,
)
from django_textclass.content.sync import (
    classify_object,
    classify_objects,
    forget_object,
    latest_requests,
    source_text,
)

__all__ = [
    "ClassificationResults",
    "ClassifiedQuerySet",
    "ResultsAccessor",
    "annotate_latest",
    "classify_object",
    "classify_objects",
    "forget_object",
    "latest_requests",
    "latest_results",
    "source_text",
    "with_label",
]
