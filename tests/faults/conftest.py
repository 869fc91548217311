"""Fixtures of the fault suite (``-m faults``): the rig of each scenario, its figures.

The suite runs on PostgreSQL; with ``CI=true`` another database fails it rather than skip.
"""

import pytest
from django.db import connection

from tests.faults import figures as figures_module
from tests.faults.rig import Rig
from tests.helpers import missing

_recorded = []


@pytest.fixture(autouse=True)
def _on_postgresql(transactional_db):
    if connection.vendor != "postgresql":
        missing("the fault suite runs on PostgreSQL (TEXTCLASS_TEST_DB=postgres)")


@pytest.fixture
def rig(transactional_db, tmp_path, settings, monkeypatch):
    """Everything a scenario starts; all of it stopped at the end."""
    bench = Rig(tmp_path, settings, monkeypatch)
    try:
        yield bench
    finally:
        bench.close()


@pytest.fixture
def figures(request):
    """Record a scenario's :class:`~tests.faults.figures.Figures` (printed, saved, summed up)."""

    def record(figures):
        figures_module.save(figures)
        _recorded.append(figures)
        print(figures.line())  # noqa: T201 - shown with -s, and in the summary below
        return figures

    return record


def pytest_terminal_summary(terminalreporter):
    if not _recorded:
        return
    terminalreporter.section("fault scenarios: figures")
    for figures in _recorded:
        terminalreporter.write_line(figures.line())
    paths = ", ".join(str(path) for path in figures_module.figures_files())
    terminalreporter.write_line(f"(saved as JSON lines in {paths})")
