"""Fixtures for the registered-content tests.

``sent`` records wake-ups instead of publishing them (the one publishing seam);
``backend`` serves every alias with the scripted backend; ``register`` registers a
test model for one test and unregisters it afterwards.
"""

import pytest

from django_textclass import dispatch
from django_textclass.content.registry import site
from django_textclass.models import ClassificationRequest
from tests.fakes import ScriptedBackend, SendRecorder, scripted_settings
from tests.testapp.apps import OTHER, SENTIMENT  # noqa: F401  (re-exported for the tests)


@pytest.fixture
def sent(monkeypatch):
    """Wake-ups recorded instead of published."""
    recorder = SendRecorder()
    monkeypatch.setattr(dispatch, "send", recorder)
    return recorder


@pytest.fixture
def backend():
    """Every alias served by the scripted backend, with an empty script and call log."""
    ScriptedBackend.reset()
    with scripted_settings():
        yield ScriptedBackend
    ScriptedBackend.reset()


@pytest.fixture
def register():
    """``register(model, fields, models=None, **options)`` for the length of one test."""
    registered = []

    def _register(model, fields, models=None, **options):
        registration = site.register(model, fields, models, **options)
        registered.append(model)
        return registration

    yield _register
    for model in registered:
        site.unregister(model)


def requests_of(obj):
    """The top-level requests of ``obj``, oldest first."""
    from django.contrib.contenttypes.models import ContentType

    return list(
        ClassificationRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk),
        ).order_by("pk")
    )
