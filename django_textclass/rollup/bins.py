"""The bins shared by the live queries and the roll-up: score bins, logarithmic latency bins."""

import math

from django.db.models import (
    Case,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Value,
    When,
)
from django.db.models.functions import Cast, Ceil, Greatest, Ln

#: Relative error of the latency percentiles read from rolled-up days.
RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LN_GAMMA = math.log(GAMMA)
#: Number of equal-width bins of the top-score histogram over [0, 1].
SCORE_BINS = 10


def score_bin():
    """The bin (0 to SCORE_BINS - 1) of ``top_score``: ``lower <= score < upper``; 1.0 in the last.

    The edges are SQL literals, so every database puts a score in the same bin.
    """
    edges = score_edges()
    return Case(
        *[When(top_score__lt=edges[i + 1], then=Value(i)) for i in range(SCORE_BINS - 1)],
        default=Value(SCORE_BINS - 1),
        output_field=IntegerField(),
    )


def score_edges():
    """The SCORE_BINS + 1 edges of the score bins, from 0.0 to 1.0."""
    return [round(i / SCORE_BINS, 10) for i in range(SCORE_BINS + 1)]


class EpochMilliseconds(Func):
    """An interval as milliseconds (double precision) on PostgreSQL.

    The same value as ``(EXTRACT(EPOCH FROM x) * 1000.0)::double precision``, bit for
    bit, without its ``numeric`` arithmetic (a third of a percentile query's time on a
    million rows): ``date_part`` gives the seconds as a double, close enough for
    ``ROUND(... * 1e6)`` to recover the exact whole microseconds (for any interval
    shorter than about 30 years), and one division by 1000 then rounds correctly.
    """

    template = "(ROUND(date_part('epoch', %(expressions)s) * 1000000.0) / 1000.0)"
    output_field = FloatField()


class _MicrosecondsToMilliseconds(Func):
    # Django computes a difference of datetimes as whole microseconds on SQLite and MySQL.
    template = "(%(expressions)s / 1000.0)"
    output_field = FloatField()


def elapsed():
    """``finished_at - created_at`` as a duration expression."""
    return ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())


def elapsed_ms(vendor):
    """``finished_at - created_at`` in milliseconds, as a float expression for ``vendor``."""
    if vendor == "postgresql":
        return EpochMilliseconds(elapsed())
    return _MicrosecondsToMilliseconds(elapsed())


def log_bin(expression):
    """The logarithmic bin of a number of milliseconds (see the module's docstring)."""
    # Cast: on PostgreSQL an integer column next to the literal 1.0 would be compared,
    # and its logarithm taken, in slow ``numeric`` arithmetic.
    return Ceil(
        Ln(Greatest(Cast(expression, FloatField()), Value(1.0), output_field=FloatField()))
        / Value(LN_GAMMA, output_field=FloatField())
    )


def bin_value(index):
    """The value a logarithmic bin stands for: within RELATIVE_ACCURACY of all it holds."""
    return 2 * GAMMA**index / (GAMMA + 1)


def histogram_percentiles(counts, fractions):
    """``{key: value}`` for ``fractions`` (``{key: fraction}``) of a log-bin histogram.

    Like ``percentile_cont``: the value at rank ``fraction * (n - 1)``, interpolated
    between the two closest ranks, each rank read as its bin's value. None when
    ``counts`` is empty.
    """
    total = sum(counts.values())
    if not total:
        return dict.fromkeys(fractions)
    bins = sorted(counts.items())

    def at_rank(rank):
        seen = 0
        for index, n in bins:
            seen += n
            if rank < seen:
                return bin_value(index)
        return bin_value(bins[-1][0])

    result = {}
    for key, fraction in fractions.items():
        position = fraction * (total - 1)
        low = math.floor(position)
        lower, upper = at_rank(low), at_rank(min(low + 1, total - 1))
        result[key] = lower + (upper - lower) * (position - low)
    return result
