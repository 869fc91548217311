"""Watching requests until they are final: counts by status, read again and again.

``textclass_status --watch`` and ``textclass_backfill --wait`` show the classification's own
progress (how many of the requests are final) rather than the command's: one grouped query per
look, at most once per ``interval`` seconds and never more often than five times the last look
took, so a watcher over a million rows stays a small load on the database.
"""

import time

from django.core.management.base import CommandError
from django.db.models import Count

from django_textclass.management.progress import Progress
from django_textclass.models import TERMINAL_STATUSES, Status

#: A watcher never looks more often than this many times the duration of its last look.
LOAD_FACTOR = 5
#: A command's exit status when its watch runs out of time.
TIMED_OUT = 1
#: A command's exit status on Ctrl-C, as a shell reports a process ended by SIGINT.
INTERRUPTED = 130
#: The longest ``--timeout`` a command takes, in seconds (about 115 days).
MAX_TIMEOUT = 10**7


def add_wait_arguments(parser):
    """``--wait`` and ``--timeout``: the options of a command that can wait for its requests."""
    parser.add_argument(
        "--wait",
        action="store_true",
        help="Then wait until the requests this run created are final, "
        "showing how many are pending, running, succeeded and failed.",
    )
    parser.add_argument(
        "--timeout",
        help=f"With --wait: stop waiting after this many "
        f"seconds, 1 to {MAX_TIMEOUT}, and exit with status 1.",
    )


class WatchTimeout(Exception):
    """The requests were not all final when the watcher's time ran out."""

    def __init__(self, counts):
        super().__init__("timed out")
        self.counts = counts


def counts_by_status(queryset):
    """``{status: n}`` over ``queryset``, every status present (zeros too); one query."""
    found = dict(
        queryset.order_by().values("status").annotate(n=Count("*")).values_list("status", "n")
    )
    return {status: found.get(status, 0) for status in Status.values}


def failures_by_code(queryset, limit=5):
    """``[(error_code, n)]`` of the failed requests of ``queryset``, most frequent first."""
    rows = (
        queryset.order_by()
        .filter(status=Status.FAILED)
        .values("error_code")
        .annotate(n=Count("*"))
        .values_list("error_code", "n")
    )
    return sorted(rows, key=lambda row: (-row[1], row[0]))[:limit]


def unfinished(counts):
    """How many requests of ``counts`` are pending or running."""
    return counts[Status.PENDING] + counts[Status.RUNNING]


def finished(counts):
    """How many requests of ``counts`` reached a final status."""
    return sum(counts[status] for status in TERMINAL_STATUSES)


def describe(counts):
    """``"2 pending, 1 running, 40 succeeded, 3 failed, 0 cancelled"``."""
    return ", ".join(f"{counts[status]:,} {status}" for status in Status.values)


def watch(queryset, stream, *, description, interval=2.0, timeout=None, every=None):
    """Show how many requests of ``queryset`` are final until none is pending or running.

    Args:
        queryset: the requests to watch (read again at each look; new rows count too).
        stream: where the progress goes (a command's ``self.stderr``).
        description: the words in front of the numbers.
        interval: least seconds between two looks.
        timeout: seconds after which :class:`WatchTimeout` is raised (None: never).
        every: least seconds between two plain lines off a terminal (the default of
            :class:`~django_textclass.management.progress.Progress` when None).

    Returns:
        The final ``{status: n}``.

    Raises:
        WatchTimeout: ``timeout`` passed first; it carries the last counts.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    with Progress(
        stream, total=None, unit="requests final", description=description, every=every
    ) as progress:
        while True:
            look = time.monotonic()
            counts = counts_by_status(queryset)
            took = time.monotonic() - look
            progress.set(
                finished(counts), total=sum(counts.values()) or None, postfix=describe(counts)
            )
            if not unfinished(counts):
                return counts
            pause = max(interval, LOAD_FACTOR * took)
            if deadline is not None and time.monotonic() + pause > deadline:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WatchTimeout(counts)
                pause = remaining
            time.sleep(pause)


def follow(
    queryset, stream, *, description, interval, timeout=None, still="", stopped="Stopped watching."
):
    """:func:`watch` as a management command runs it, with the commands' own exits.

    ``textclass_status --watch`` and ``textclass_backfill --wait`` end the same way: the
    time runs out (exit status 1, the counts in one line) or the user presses Ctrl-C (exit
    status 130); neither stops the workers.

    Args:
        queryset: the requests to watch, as for :func:`watch`.
        stream: where the progress goes.
        description: the words in front of the numbers.
        interval: least seconds between two looks.
        timeout: seconds to give up after (None: never).
        still: words added to the timeout's line (``"; the workers go on"``).
        stopped: the line printed on Ctrl-C.

    Returns:
        ``(counts, seconds)``: the final ``{status: n}`` and how long the watch took.

    Raises:
        CommandError: ``returncode`` 1 when ``timeout`` passed first, 130 on Ctrl-C.
    """
    started = time.monotonic()
    try:
        counts = watch(
            queryset, stream, description=description, interval=interval, timeout=timeout
        )
    except WatchTimeout as exc:
        raise CommandError(
            f"Still {unfinished(exc.counts):,} requests pending or running after {timeout} s "
            f"({describe(exc.counts)}){still}.",
            returncode=TIMED_OUT,
        ) from None
    except KeyboardInterrupt:
        raise CommandError(stopped, returncode=INTERRUPTED) from None
    return counts, time.monotonic() - started
