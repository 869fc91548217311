"""Progress of textclass_cleanup and textclass_rollup (--rebuild): lines on stderr."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_textclass.models import ClassificationRequest, RollupDay
from tests.admin.data import seed_known_history
from tests.health.helpers import request

pytestmark = pytest.mark.django_db


def run(command, *args):
    out, err = StringIO(), StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_cleanup__progress_lines_of_the_deleted_requests(plain_every):
    for i in range(5):
        request(
            "succeeded",
            age=40 * 86400,
            text=f"old {i}",
            finished_at=timezone.now() - timedelta(days=40),
        )

    out, err = run("textclass_cleanup", "--days", "30", "--batch-size", "2")

    assert [line.split(",")[0] for line in err.splitlines()] == [
        "deleted: 2/5 requests (40 %)",
        "deleted: 4/5 requests (80 %)",
        "deleted: 5/5 requests (100 %)",
    ]
    assert out.startswith("Deleted 5 request(s)") and ClassificationRequest.objects.count() == 0


def test_cleanup__no_progress_line_in_a_short_run():
    request("succeeded", age=40 * 86400, finished_at=timezone.now() - timedelta(days=40))

    out, err = run("textclass_cleanup", "--days", "30")

    assert err == "" and out.startswith("Deleted 1 request(s)")


def test_rollup_rebuild__progress_through_the_span_of_days(plain_every):
    seed_known_history()  # 2026-03-01 and 2026-03-02
    first = timezone.datetime(2026, 3, 1).date()
    span = ((timezone.now() - timedelta(hours=1)).date() - first).days

    out, err = run("textclass_rollup", "--rebuild")

    lines = err.splitlines()
    assert [re.match(r"rebuilt: (\d+)/(\d+) days", line).groups() for line in lines] == [
        ("1", str(span)),
        ("2", str(span)),
        (str(span), str(span)),
    ]
    assert out == "Rebuilt: rolled up 2 days.\n"
    assert RollupDay.objects.filter(rolled_at__isnull=False).count() == span


def test_rollup__progress_counts_the_days_summed(plain_every):
    seed_known_history()

    out, err = run("textclass_rollup", "--max-days", "5")

    assert [line.split(",")[0] for line in err.splitlines()] == [
        "rolled up: 1/5 days (20 %)",
        "rolled up: 2/5 days (40 %)",
    ]
    assert out == "Rolled up 2 days.\n"
