"""Every service test runs against the scripted backend, with wake-ups recorded."""

import pytest

from django_textclass import dispatch
from tests.fakes import ScriptedBackend, SendRecorder, scripted_settings


@pytest.fixture(autouse=True)
def backend():
    """Every alias served by the scripted backend, with an empty script and call log."""
    ScriptedBackend.reset()
    with scripted_settings():
        yield ScriptedBackend
    ScriptedBackend.reset()


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    """Wake-ups recorded instead of published (what the test left gathered: its own)."""
    recorder = SendRecorder()
    monkeypatch.setattr(dispatch, "send", recorder)
    yield recorder
    dispatch.flush()
