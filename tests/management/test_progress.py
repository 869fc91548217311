"""Progress: a tqdm bar on a real terminal, plain lines (at most every 10 s) elsewhere."""

import re
from io import StringIO

from django_textclass.management.progress import Progress


def test_progress__plain_lines_with_rate_and_eta_off_a_terminal():
    out = StringIO()

    with Progress(out, total=10, unit="objects", description="backfill", every=0) as progress:
        progress.set(4, postfix="8 requests created")
        progress.set(10)

    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(
        r"backfill: 4/10 objects \(40 %\), [\d.]+ ?\w?objects/s, ETA [\d:]+, "
        r"8 requests created",
        lines[0],
    ), lines[0]
    assert lines[1].startswith("backfill: 10/10 objects (100 %)")
    assert "\r" not in out.getvalue()


def test_progress__no_plain_line_before_its_interval():
    out = StringIO()

    with Progress(out, total=10, unit="objects", description="backfill", every=60) as progress:
        for done in range(1, 11):
            progress.set(done)

    assert out.getvalue() == ""  # a short run logs only its command's summary


def test_progress__unknown_total_has_no_percentage():
    out = StringIO()

    Progress(out, total=None, unit="days", description="rolled up", every=0).set(3)

    assert re.fullmatch(r"rolled up: 3 days, [\d.]+ ?\w?days/s\n", out.getvalue())


def test_progress__a_bar_that_redraws_in_place_on_a_terminal(terminal):
    with Progress(
        terminal.stream, total=10, unit="objects", description="backfill", every=0
    ) as progress:
        progress.set(5, postfix="3 pending")
        progress.set(10, postfix="0 pending")

    screen = terminal.read()
    assert "\r" in screen  # redrawn, not one line per step
    assert "backfill: 100%|" in screen and "10/10" in screen and "objects/s" in screen
    assert "0 pending" in screen


def test_progress__the_total_may_grow_while_watching(terminal):
    with Progress(
        terminal.stream, total=None, unit="requests", description="final", every=0
    ) as progress:
        progress.set(2, total=4)
        progress.set(6, total=8)

    screen = terminal.read()
    assert "6/8" in screen and "75%" in screen


def test_progress__a_terminal_that_reports_no_width_still_gets_a_bar():
    from tests.management.helpers import Terminal

    terminal = Terminal(rows=0, columns=0)
    try:
        with Progress(terminal.stream, total=4, unit="days", description="rebuilt") as progress:
            progress.set(4)
        screen = terminal.read()
    finally:
        terminal.close()

    assert "rebuilt: 100%|" in screen and "4/4" in screen
