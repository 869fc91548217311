import pytest

from tests.management.helpers import Terminal


@pytest.fixture
def terminal():
    """A real pseudo-terminal (``terminal.stream`` isatty)."""
    opened = Terminal()
    yield opened
    opened.close()


@pytest.fixture
def plain_every(monkeypatch):
    """Plain progress lines at every step (instead of every 10 s)."""
    monkeypatch.setattr("django_textclass.management.progress.PLAIN_EVERY", 0.0)
