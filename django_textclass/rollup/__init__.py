"""The daily roll-up: statistics over long windows cost what the window spans, not its rows.

Each closed UTC day of the history is summed once into two small tables:

- :class:`~django_textclass.models.RollupCount`: requests per creation hour, finish
  hour, model, status and top label (every count of the dashboard, exactly);
- :class:`~django_textclass.models.RollupHistogram`: succeeded requests per model, top
  label and bin of the top score (the dashboard's ten bins, exact) and of the two
  latencies (logarithmic bins, :data:`RELATIVE_ACCURACY` wide).

:func:`split` then answers a statistics query from the rolled days it covers plus the
rows of the rest of its window (today, the partial days at its edges, days changed since
they were rolled), which :mod:`django_textclass.stats` reads live as before.

**Keeping it right.** A day is rolled only once it ended :data:`SETTLE` ago. Any later
write to its requests through the ORM (``QuerySet.update``/``delete``/``bulk_create``,
``Model.save``/``delete``) inserts a :class:`~django_textclass.models.RollupDirtyDay`
marker *in the same transaction* (``RollupDirtyDay.mark``), and a marked day is read
live until the next :func:`roll` sums it again. :func:`roll_day` deletes the marker *before*
it reads the day, so a change it did not see leaves its marker behind. Writes that
bypass the ORM (raw SQL, cascades from deleting a user or a content type) are found by
:func:`verify`, which compares every rolled day's counts with the table.

**Percentiles.** A latency ``x`` ms falls in bin ``ceil(log_g(max(x, 1)))`` with
``g = (1 + a) / (1 - a)``; the bin is reported as ``2 g^i / (g + 1)``, within ``a``
(1 %) of every value in it (the scheme of DDSketch). Values under 1 ms share bin 0.
"""

from django_textclass.rollup.bins import (
    GAMMA,
    LN_GAMMA,
    RELATIVE_ACCURACY,
    SCORE_BINS,
    EpochMilliseconds,
    bin_value,
    elapsed,
    elapsed_ms,
    histogram_percentiles,
    log_bin,
    score_bin,
    score_edges,
)
from django_textclass.rollup.days import UTC, changed_days, day_start, days_of, enabled
from django_textclass.rollup.reads import (
    SLICE_FIELDS,
    OddOffset,
    Parts,
    Split,
    rolled_model_counts,
    rolled_parts,
    split,
)
from django_textclass.rollup.writes import (
    SETTLE,
    VERIFY_CHUNK_DAYS,
    closed_span,
    rebuild,
    roll,
    roll_day,
    verify,
)

__all__ = [
    "GAMMA",
    "LN_GAMMA",
    "RELATIVE_ACCURACY",
    "SCORE_BINS",
    "SETTLE",
    "SLICE_FIELDS",
    "UTC",
    "VERIFY_CHUNK_DAYS",
    "EpochMilliseconds",
    "OddOffset",
    "Parts",
    "Split",
    "bin_value",
    "changed_days",
    "closed_span",
    "day_start",
    "days_of",
    "elapsed",
    "elapsed_ms",
    "enabled",
    "histogram_percentiles",
    "log_bin",
    "rebuild",
    "roll",
    "roll_day",
    "rolled_model_counts",
    "rolled_parts",
    "score_bin",
    "score_edges",
    "split",
    "verify",
]
