"""Progress of a long management command: a tqdm bar on a terminal, plain lines elsewhere.

On a terminal the bar redraws itself in place (rate, elapsed time, ETA). Off a terminal (cron,
a CI log, ``| tee``) a redrawn line would fill the log with carriage returns, so a plain line,
formatted by the same library, is written at most every :data:`PLAIN_EVERY` seconds, and none
when the work ends sooner: a short run's log holds only its summary line.

Progress goes to the command's **stderr**, tqdm's own habit: stdout keeps the one summary line
a script may read.

Why tqdm (docs/operations.md): it has no dependency of its own and is pure Python, it computes
rate and ETA with smoothing, and its ``format_meter`` formats the plain lines too. rich would
bring markdown-it-py, mdurl and Pygments for the same bar.
"""

import os
import time

from tqdm import tqdm

#: Least seconds between two plain progress lines (off a terminal).
PLAIN_EVERY = 10.0
#: Least seconds between two redraws of the bar on a terminal.
BAR_EVERY = 0.2
#: Width of the bar on a terminal that reports none (a serial console, ``docker exec -t``).
FALLBACK_COLUMNS = 80
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt}{unit} ({percentage:.0f} %), {rate_fmt}, ETA {remaining}"
PLAIN_FORMAT_NO_TOTAL = "{desc}: {n_fmt}{unit}, {rate_fmt}"


def underlying(stream):
    """The raw stream behind Django's ``OutputWrapper`` (whose ``write`` adds a newline)."""
    return getattr(stream, "_out", stream)


def _columns(stream):
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class Progress:
    """Shows how far a command has got: ``set(done)`` as the work goes, ``close()`` at the end.

    Args:
        stream: where to write (a command's ``self.stderr``); a terminal gets the bar.
        total: how many units the work holds (None: unknown, no percentage or ETA).
        unit: what is counted, e.g. ``"objects"``.
        description: the words in front of the numbers, e.g. the command's name.
        every: least seconds between two plain lines (default :data:`PLAIN_EVERY`).
    """

    def __init__(self, stream, *, total, unit, description, every=None):
        self.stream = underlying(stream)
        self.total = total
        self.unit = f" {unit}"
        self.description = description
        self.every = PLAIN_EVERY if every is None else every
        self.done = 0
        self.postfix = ""
        self.started = time.monotonic()
        self._last_line = self.started
        isatty = getattr(self.stream, "isatty", None)
        self.bar = None
        if isatty is not None and isatty():
            # A terminal of 0 columns would get an empty bar: tqdm fits the bar to the width.
            sized = _columns(self.stream) > 0
            self.bar = tqdm(
                total=total,
                unit=self.unit,
                desc=description,
                file=self.stream,
                dynamic_ncols=sized,
                ncols=None if sized else FALLBACK_COLUMNS,
                mininterval=BAR_EVERY,
                leave=True,
            )

    def set(self, done, *, total=None, postfix=""):
        """Say that ``done`` units are done (an absolute count); ``total`` may change too.

        ``postfix`` is shown after the numbers (the counts by status, say).
        """
        if total is not None:
            self.total = total
        self.done, self.postfix = done, postfix
        if self.bar is not None:
            if total is not None:
                self.bar.total = total
            self.bar.set_postfix_str(postfix, refresh=False)
            if done > self.bar.n:
                self.bar.update(done - self.bar.n)  # feeds tqdm's smoothed rate
            else:
                self.bar.n = done
                self.bar.refresh()
            return
        now = time.monotonic()
        if now - self._last_line >= self.every:
            self._last_line = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self):
        """The plain progress line for the current state."""
        text = tqdm.format_meter(
            self.done,
            self.total,
            time.monotonic() - self.started,
            prefix=self.description,
            unit=self.unit,
            bar_format=PLAIN_FORMAT if self.total else PLAIN_FORMAT_NO_TOTAL,
        )
        return f"{text}, {self.postfix}" if self.postfix else text

    def close(self):
        """End the bar (its last state stays on screen); plain lines need no ending."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
