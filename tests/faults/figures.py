"""The figures each fault scenario records: how long recovery took, what the API was asked.

Each scenario fills one :class:`Figures` and hands it to the ``figures`` fixture, which
prints it, appends it as one JSON line to ``<run dir>/faults-figures.jsonl`` (and to the
file named by ``TEXTCLASS_FAULTS_FIGURES``, when set) and shows the table at the end of
the run. ``docs/reliability.md``'s table is filled from that output.
"""

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings

FILE_NAME = "faults-figures.jsonl"


@dataclass
class Figures:
    """One scenario's figures.

    ``recovery_s`` is measured from the end of the fault (the process killed, the broker or
    the API back) to the moment the last request it touched was final; ``recovery_from``
    says which moment. ``texts_sent`` counts every text in every call the emulator
    received (a batch of 8 is 8), refused calls (429, 503, 500) included, so
    ``texts_sent / unique_texts`` is what the API was asked per unique text;
    ``texts_answered`` counts the texts of the calls answered 200 only, so
    ``texts_answered / unique_texts`` is what was classified (and paid for) per unique text:
    1.00 when nothing was classified twice.
    """

    scenario: str
    texts: int = 0
    unique_texts: int = 0
    api_calls: int = 0
    texts_sent: int = 0
    texts_answered: int = 0
    recovery_s: float | None = None
    recovery_from: str = ""
    total_s: float | None = None
    audit: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    @property
    def sent_per_unique(self):
        return self.texts_sent / self.unique_texts if self.unique_texts else None

    @property
    def answered_per_unique(self):
        return self.texts_answered / self.unique_texts if self.unique_texts else None

    def count_calls(self, emulator):
        """Take ``api_calls`` and ``texts_sent`` from the emulator's log (the model route)."""
        calls = [call for call in emulator.requests if call.model_id is not None]
        self.api_calls = len(calls)
        self.texts_sent = sum(len(call.inputs) for call in calls)
        self.texts_answered = sum(len(call.inputs) for call in calls if call.status == 200)
        return self

    def as_dict(self):
        data = asdict(self)
        for name in ("sent_per_unique", "answered_per_unique"):
            value = getattr(self, name)
            data[name] = round(value, 3) if value is not None else None
        return data

    def line(self):
        """One line for the terminal."""
        recovery = "-" if self.recovery_s is None else f"{self.recovery_s:.1f} s"
        sent, answered = (
            ("-" if value is None else f"{value:.3f}")
            for value in (self.sent_per_unique, self.answered_per_unique)
        )
        total = "-" if self.total_s is None else f"{self.total_s:.1f} s"
        return (
            f"{self.scenario}: {self.texts} texts ({self.unique_texts} unique), "
            f"{self.api_calls} calls, {sent} sent and {answered} answered per unique "
            f"text, recovery "
            f"{recovery} ({self.recovery_from or 'n/a'}), total {total}, "
            f"audit {self.audit}, {self.notes}"
        )


class Clock:
    """Seconds since it started, and marks for the moments a scenario names."""

    def __init__(self):
        self.started = time.monotonic()
        self.marks = {}

    def mark(self, name):
        self.marks[name] = time.monotonic()
        return self.marks[name]

    def since(self, name):
        return time.monotonic() - self.marks[name]

    def between(self, first, last):
        return self.marks[last] - self.marks[first]

    @property
    def elapsed(self):
        return time.monotonic() - self.started


def figures_files():
    """Where the figures of this run go."""
    files = [Path(settings.RUN_DIR) / FILE_NAME]
    if os.environ.get("TEXTCLASS_FAULTS_FIGURES"):
        files.append(Path(os.environ["TEXTCLASS_FAULTS_FIGURES"]))
    return files


def save(figures):
    line = json.dumps(figures.as_dict(), default=str)
    for path in figures_files():
        with path.open("a") as out:
            out.write(line + "\n")


def load(path):
    """The figures saved in ``path``, in order (one dict per scenario)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
