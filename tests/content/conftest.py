"""Fixtures for the registered-content tests.

``sent`` records wake-ups instead of publishing them (the one publishing seam);
``backend`` serves every alias with the scripted backend; ``register`` registers a
test model for one test and unregisters it afterwards.
"""

import pytest

from django_textclass import dispatch
from django_textclass.content.registry import site
from tests.fakes import ScriptedBackend, SendRecorder, scripted_settings


@pytest.fixture
def sent(monkeypatch):
    """Wake-ups recorded instead of published (what the test left gathered: its own)."""
    recorder = SendRecorder()
    monkeypatch.setattr(dispatch, "send", recorder)
    yield recorder
    dispatch.flush()


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
