"""The daily roll-up: the same numbers as the requests table, kept right as rows change."""

import math
import random
import threading
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import F
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_textclass import rollup
from django_textclass.models import (
    ClassificationRequest,
    RollupCount,
    RollupDay,
    RollupDirtyDay,
    RollupHistogram,
    text_hash,
)
from django_textclass.stats import compute_stats
from django_textclass.tasks import roll_up

UTC = dt_timezone.utc

pytestmark = pytest.mark.django_db

FIRST_DAY = date(2026, 3, 10)
DAYS = 5
MODELS = ("acme/sentiment", "acme/topics")
LABELS = {"acme/sentiment": ["POSITIVE", "NEGATIVE"], "acme/topics": ["sport", "news", "art"]}
#: Long after the seeded days: every one of them is closed.
LATER = datetime(2026, 4, 1, tzinfo=UTC)
STATUSES = ["succeeded"] * 8 + ["failed", "cancelled", "pending", "running"]


def seed(rows=400, days=DAYS, first_day=FIRST_DAY, rng_seed=7):
    """``rows`` requests spread over ``days`` UTC days (one left empty), every status."""
    rng = random.Random(rng_seed)
    objs = []
    for i in range(rows):
        day = rng.choice([d for d in range(days) if d != 2])  # day 3 stays empty
        created = rollup.day_start(first_day + timedelta(days=day)) + timedelta(
            seconds=rng.randrange(86400), microseconds=rng.randrange(10**6)
        )
        model = rng.choice(MODELS)
        status = rng.choice(STATUSES)
        finished = None
        if status in ("succeeded", "failed", "cancelled"):
            # From 0.2 ms to about 3 hours: some finish in a later hour, or the next day.
            finished = created + timedelta(milliseconds=math.exp(rng.uniform(-1.6, 16)))
        succeeded = status == "succeeded"
        text = f"text {i}"
        objs.append(
            ClassificationRequest(
                model_id=model,
                text=text,
                text_hash=text_hash(text),
                status=status,
                created_at=created,
                finished_at=finished,
                backend="default",
                top_label=rng.choice(LABELS[model]) if succeeded else "",
                top_score=rng.choice([0.0, 0.1, 0.35, 0.5, 0.999, 1.0, rng.random()])
                if succeeded
                else None,
                backend_ms=rng.choice([None, 0, 1, 7, rng.randrange(20, 20000)])
                if succeeded
                else None,
            )
        )
    ClassificationRequest.objects.bulk_create(objs)
    return objs


def window(start=None, end=None, **filters):
    rows = ClassificationRequest.objects.filter(**filters)
    if start:
        rows = rows.filter(created_at__gte=start)
    if end:
        rows = rows.filter(created_at__lt=end)
    return rows


def assert_same_numbers(live, rolled):
    """Counts and shares identical; percentiles within 1 % (or 1 ms, below 1 ms)."""
    for key in live:
        if key in ("latency_ms", "backend_ms"):
            for p, exact in live[key].items():
                if exact is None:
                    assert rolled[key][p] is None
                else:
                    assert rolled[key][p] == pytest.approx(exact, rel=0.0101, abs=1.0), (key, p)
        elif key != "percentiles_estimated":
            assert rolled[key] == live[key], key
    assert live["percentiles_estimated"] is False
    assert rolled["percentiles_estimated"] is True


QUERIES = {
    "everything": lambda: window(),
    "one model": lambda: window(model_id=MODELS[1]),
    "model and status": lambda: window(model_id=MODELS[0], status="failed"),
    "model and label": lambda: window(model_id=MODELS[1], top_label="news"),
    "succeeded only": lambda: window(status="succeeded"),
    "window cut mid-day": lambda: window(
        datetime(2026, 3, 10, 13, 30, tzinfo=UTC), datetime(2026, 3, 14, 7, 0, tzinfo=UTC)
    ),
    "window of whole days": lambda: window(
        datetime(2026, 3, 11, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)
    ),
}


@pytest.mark.parametrize("bucket", ["day", "hour"])
@pytest.mark.parametrize("query", list(QUERIES))
def test_rolled__same_counts_as_the_table_percentiles_within_one_percent(query, bucket):
    seed()
    live = compute_stats(QUERIES[query](), bucket=bucket)

    assert rollup.roll(now=LATER) > 0
    rolled = compute_stats(QUERIES[query](), bucket=bucket)

    assert_same_numbers(live, rolled)


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York"])
def test_rolled__local_days_and_hours_of_a_whole_hour_zone(zone):
    seed()
    rollup.roll(now=LATER)
    with override_settings(TIME_ZONE=zone):
        rolled = {bucket: compute_stats(window(), bucket=bucket) for bucket in ("day", "hour")}
        RollupDay.objects.all().delete()
        live = {bucket: compute_stats(window(), bucket=bucket) for bucket in ("day", "hour")}

    for bucket in live:
        assert_same_numbers(live[bucket], rolled[bucket])


def test_rolled__zone_with_a_half_hour_offset_reads_everything_live():
    seed()
    rollup.roll(now=LATER)
    with override_settings(TIME_ZONE="Asia/Kolkata"):
        stats = compute_stats(window(), bucket="hour")

    # Its local hours start at UTC half hours: no rolled UTC hour can be one of them.
    assert stats["percentiles_estimated"] is False
    assert {row["bucket"][13:] for row in stats["throughput"]} == {":00:00+05:30"}


def test_rolled_days__are_read_from_the_rollup_not_the_table():
    seed()
    rollup.roll(now=LATER)
    before = compute_stats(window())
    table = ClassificationRequest._meta.db_table
    with connection.cursor() as cursor:  # behind the ORM's back: nothing is marked
        cursor.execute(f"UPDATE {table} SET status = 'failed' WHERE status = 'succeeded'")  # noqa: S608

    assert compute_stats(window())["status_counts"] == before["status_counts"]


def test_verify__finds_raw_sql_changes_and_the_next_read_is_right():
    seed()
    rollup.roll(now=LATER)
    table = ClassificationRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE created_at < %s",  # noqa: S608
            [datetime(2026, 3, 11, tzinfo=UTC)],
        )

    assert rollup.verify() == [FIRST_DAY]
    assert (
        compute_stats(window())["status_counts"]
        == compute_stats(
            window(owner__isnull=True)  # an owner filter is always read live
        )["status_counts"]
    )
    assert rollup.roll(now=LATER) == 1
    assert rollup.verify() == []


def test_verify__in_chunks_of_days(monkeypatch):
    monkeypatch.setattr(rollup, "VERIFY_CHUNK_DAYS", 2)
    seed()
    rollup.roll(now=LATER)
    last_day = FIRST_DAY + timedelta(days=4)
    table = ClassificationRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET top_label = 'x' WHERE created_at >= %s "  # noqa: S608
            "AND status = 'succeeded'",
            [rollup.day_start(last_day)],
        )

    assert rollup.verify() == [last_day]


def test_verify__nothing_rolled__nothing_to_compare():
    seed()

    assert rollup.verify() == []


# --- marking changed days -------------------------------------------------------------------


def past_row(day=FIRST_DAY, **fields):
    created = rollup.day_start(day) + timedelta(hours=5)
    fields.setdefault("status", "failed")
    return ClassificationRequest.objects.create(
        model_id=MODELS[0],
        text="t",
        text_hash=text_hash("t"),
        created_at=created,
        finished_at=created + timedelta(seconds=1),
        **fields,
    )


def dirty_days():
    return set(RollupDirtyDay.objects.values_list("day", flat=True))


def test_marking__every_orm_write_to_a_past_day_marks_it():
    row = past_row()
    assert dirty_days() == {FIRST_DAY}  # created (save) on a past day
    RollupDirtyDay.objects.all().delete()

    ClassificationRequest.objects.filter(pk=row.pk).update(status="cancelled")
    assert dirty_days() == {FIRST_DAY}
    RollupDirtyDay.objects.all().delete()

    row.refresh_from_db()
    row.attempts = 3
    row.save()
    assert dirty_days() == {FIRST_DAY}
    RollupDirtyDay.objects.all().delete()

    row.delete()
    assert dirty_days() == {FIRST_DAY}
    RollupDirtyDay.objects.all().delete()

    other = past_row(day=FIRST_DAY + timedelta(days=1))
    RollupDirtyDay.objects.all().delete()
    ClassificationRequest.objects.filter(pk=other.pk).delete()
    assert dirty_days() == {FIRST_DAY + timedelta(days=1)}


def test_marking__bulk_create_of_past_rows_marks_their_days():
    seed(rows=50)

    assert dirty_days() == {FIRST_DAY + timedelta(days=d) for d in (0, 1, 3, 4)}


def test_marking__rows_of_today_mark_nothing():
    row = ClassificationRequest.objects.create(model_id=MODELS[0], text="t", text_hash="h")
    ClassificationRequest.objects.filter(pk=row.pk).update(status="cancelled")
    row.delete()

    assert dirty_days() == set()


def test_marking__moving_a_row_into_a_past_day_marks_that_day():
    row = ClassificationRequest.objects.create(model_id=MODELS[0], text="t", text_hash="h")

    ClassificationRequest.objects.filter(pk=row.pk).update(
        created_at=rollup.day_start(FIRST_DAY) + timedelta(hours=1)
    )

    assert dirty_days() == {FIRST_DAY}


def rollup_questions(queries):
    """The roll-up's own ``SELECT DISTINCT`` of changed days among captured queries."""
    return [query["sql"] for query in queries if "DISTINCT" in query["sql"]]


def test_marking__a_write_of_no_rolled_field_marks_and_asks_nothing():
    row = past_row(status="running")
    RollupDirtyDay.objects.all().delete()

    with CaptureQueriesContext(connection) as queries:
        ClassificationRequest.objects.filter(pk=row.pk).update(
            lease_expires_at=timezone.now(), attempts=F("attempts") + 1, claim_token=None
        )

    assert rollup_questions(queries) == []
    assert dirty_days() == set()


def test_marking__bulk_update_takes_the_days_from_the_objects():
    rows = [past_row(), past_row(day=FIRST_DAY + timedelta(days=2))]
    RollupDirtyDay.objects.all().delete()
    for row in rows:
        row.status = "cancelled"

    with CaptureQueriesContext(connection) as queries:
        ClassificationRequest.objects.bulk_update(rows, ["status"])

    assert rollup_questions(queries) == []
    assert dirty_days() == {FIRST_DAY, FIRST_DAY + timedelta(days=2)}


def test_marking__bulk_update_of_deferred_created_at_asks_the_database():
    past_row()
    RollupDirtyDay.objects.all().delete()
    rows = list(ClassificationRequest.objects.defer("created_at"))
    for row in rows:
        row.status = "cancelled"

    with CaptureQueriesContext(connection) as queries:
        ClassificationRequest.objects.bulk_update(rows, ["status"])

    assert len(rollup_questions(queries)) == 1
    assert dirty_days() == {FIRST_DAY}


def test_marking__created_at_among_marks_the_days_it_was_told():
    row = past_row()
    RollupDirtyDay.objects.all().delete()
    today = timezone.now()

    with CaptureQueriesContext(connection) as queries:
        ClassificationRequest.objects.filter(pk=row.pk).created_at_among([today]).update(
            status="cancelled"
        )
        # The promise survives further filtering (a clone keeps it).
        ClassificationRequest.objects.created_at_among([row.created_at]).filter(pk=row.pk).update(
            status="failed"
        )

    assert rollup_questions(queries) == []
    assert dirty_days() == {FIRST_DAY}  # only the second write was told of a past day


def test_marking__a_change_after_rolling_is_read_live_until_rolled_again():
    seed()
    rollup.roll(now=LATER)
    row = ClassificationRequest.objects.filter(status="failed").first()
    day = row.created_at.astimezone(UTC).date()
    before = compute_stats(window())["status_counts"]

    ClassificationRequest.objects.filter(pk=row.pk).update(status="cancelled")

    assert dirty_days() == {day}
    after = compute_stats(window())
    assert after["percentiles_estimated"] is True  # the other days still come rolled
    assert after["status_counts"]["failed"] == before["failed"] - 1
    assert after["status_counts"]["cancelled"] == before["cancelled"] + 1
    assert rollup.roll(now=LATER) == 1
    assert dirty_days() == set()
    assert compute_stats(window())["status_counts"] == after["status_counts"]


@pytest.mark.django_db(transaction=True)
def test_marking__a_write_the_roll_did_not_see_leaves_its_marker():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the interleaving cannot happen")
    seed(rows=60)
    rollup.roll(now=LATER)
    row = ClassificationRequest.objects.filter(
        created_at__lt=datetime(2026, 3, 11, tzinfo=UTC), status="failed"
    ).first()
    written, rolled = threading.Event(), threading.Event()

    def write():
        try:
            with transaction.atomic():
                ClassificationRequest.objects.filter(pk=row.pk).update(status="cancelled")
                written.set()
                rolled.wait(10)  # commit only after the roll has read the day
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    assert written.wait(10)
    rollup.roll_day(FIRST_DAY)  # does not see the uncommitted change
    rolled.set()
    writer.join(10)

    assert dirty_days() == {FIRST_DAY}
    stats = compute_stats(window(model_id=MODELS[0]))
    assert (
        stats["status_counts"]
        == compute_stats(window(model_id=MODELS[0], owner__isnull=True))["status_counts"]
    )


@pytest.mark.django_db(transaction=True)
def test_use_tz_off__nothing_marked_or_rolled_and_stats_read_the_rows():
    seed(rows=40)
    rollup.roll(now=LATER)
    with override_settings(USE_TZ=False):
        ClassificationRequest.objects.filter(status="failed").update(status="cancelled")
        ClassificationRequest.objects.filter(status="pending").delete()

        assert dirty_days() == set()
        assert rollup.split(window()) is None
        assert rollup.roll() == 0 and rollup.verify() == []
        stats = compute_stats(window())
    assert stats["percentiles_estimated"] is False
    assert stats["status_counts"]["failed"] == stats["status_counts"]["pending"] == 0


# --- rolling ---------------------------------------------------------------------------------


def test_roll__a_day_is_closed_only_an_hour_after_its_end():
    seed(rows=30, days=1)
    end_of_day = rollup.day_start(FIRST_DAY + timedelta(days=1))

    assert rollup.roll(now=end_of_day + timedelta(minutes=59)) == 0
    assert rollup.roll(now=end_of_day + timedelta(minutes=61)) == 1
    assert RollupDay.objects.get(day=FIRST_DAY).requests == 30


def test_roll__empty_days_are_recorded_so_the_rolled_days_are_one_run():
    seed()
    rollup.roll(now=LATER)

    assert RollupDay.objects.get(day=FIRST_DAY + timedelta(days=2)).requests == 0
    cut = rollup.split(window())
    assert cut.ranges == [(FIRST_DAY, LATER.date() - timedelta(days=1))]


def test_roll__max_days_then_the_next_call_goes_on():
    seed()

    assert rollup.roll(now=LATER, max_days=2) == 2
    assert rollup.roll(now=LATER, max_days=2) == 2
    assert rollup.roll(now=LATER, max_days=2) == 0
    assert sum(RollupDay.objects.values_list("requests", flat=True)) == 400


def test_roll__twice__same_rows():
    seed()
    rollup.roll(now=LATER)
    counts = sorted(RollupCount.objects.values_list("day", "hour", "status", "requests"))

    rollup.roll_day(FIRST_DAY)
    rollup.rebuild(now=LATER)

    assert sorted(RollupCount.objects.values_list("day", "hour", "status", "requests")) == counts


def test_roll__nothing_to_do_on_an_empty_table():
    assert rollup.roll(now=LATER) == 0
    assert not RollupDay.objects.exists()


def test_roll__histogram_rows_hold_only_succeeded_requests():
    seed()
    rollup.roll(now=LATER)

    scores = sum(RollupHistogram.objects.filter(metric="score").values_list("requests", flat=True))
    assert scores == ClassificationRequest.objects.filter(status="succeeded").count()


# --- which queries the roll-up answers ---------------------------------------------------------


@pytest.mark.parametrize(
    "rows",
    [
        lambda: window(owner__isnull=True),
        lambda: window(text__icontains="text 1"),
        lambda: window(status__in=["failed", "pending"]),
        lambda: window().exclude(model_id=MODELS[0]),
        lambda: window(created_at__gt=datetime(2026, 3, 1, tzinfo=UTC)),
        lambda: window(model_id=MODELS[0]) | window(model_id=MODELS[1]),
        lambda: window()[:10],
        lambda: window().none(),
    ],
    ids=["owner", "text search", "status in", "exclude", "gt", "union", "sliced", "none"],
)
def test_split__other_filters_are_read_live(rows):
    seed(rows=40)
    rollup.roll(now=LATER)

    assert rollup.split(rows()) is None


def test_split__window_without_a_whole_rolled_day__read_live():
    seed()
    rollup.roll(now=LATER)

    assert (
        rollup.split(
            window(datetime(2026, 3, 10, 1, tzinfo=UTC), datetime(2026, 3, 10, 23, tzinfo=UTC))
        )
        is None
    )


def test_split__live_part_is_the_window_edges():
    seed()
    rollup.roll(now=LATER)
    start, end = datetime(2026, 3, 10, 12, tzinfo=UTC), datetime(2026, 3, 13, 12, tzinfo=UTC)

    cut = rollup.split(window(start, end, model_id=MODELS[0]))

    assert cut.conditions == {"model_id": MODELS[0]}
    assert cut.ranges == [(date(2026, 3, 11), date(2026, 3, 13))]
    edges = [row.created_at for row in cut.live]
    assert edges and all(
        start <= at < datetime(2026, 3, 11, tzinfo=UTC)
        or datetime(2026, 3, 13, tzinfo=UTC) <= at < end
        for at in edges
    )


# --- the percentile bins ---------------------------------------------------------------------


def test_bins__every_value_within_one_percent_of_its_bin():
    for value in [1.0001, 1.5, 2, 9.99, 10, 123.4, 1e3, 65_432.1, 3.6e6, 8.64e7]:
        index = math.ceil(math.log(value) / rollup.LN_GAMMA)
        assert abs(rollup.bin_value(index) - value) / value <= rollup.RELATIVE_ACCURACY


def test_histogram_percentiles__interpolates_between_ranks_like_percentile_cont():
    low, high = 100, 200
    counts = {low: 1, high: 1}

    result = rollup.histogram_percentiles(counts, {"p50": 0.5, "p0": 0.0})

    assert result["p0"] == rollup.bin_value(low)
    assert result["p50"] == pytest.approx((rollup.bin_value(low) + rollup.bin_value(high)) / 2)
    assert rollup.histogram_percentiles({}, {"p50": 0.5}) == {"p50": None}


# --- the task, the command ---------------------------------------------------------------------


def test_task__rolls_closed_days():
    seed(rows=40)

    assert roll_up.apply().get() == RollupDay.objects.filter(requests__gt=0).count() == 4


def test_task__verify_marks_days_that_differ():
    seed(rows=40)
    roll_up.apply().get()
    end = rollup.day_start(FIRST_DAY + timedelta(days=1))
    first_day = ClassificationRequest.objects.filter(created_at__lt=end)
    first_day._raw_delete(connection.alias)  # as a cascade does: no hook runs

    roll_up.apply(kwargs={"verify": True}).get()

    assert RollupDay.objects.get(day=FIRST_DAY).requests == 0


def test_command__rolls_and_says_how_many_days(capsys):
    seed(rows=40)

    call_command("textclass_rollup")
    assert capsys.readouterr().out == "Rolled up 4 days.\n"
    call_command("textclass_rollup", "--verify")
    assert capsys.readouterr().out == "Verified: 0 days changed. Rolled up 0 days.\n"
    call_command("textclass_rollup", "--rebuild")
    assert capsys.readouterr().out == "Rebuilt: rolled up 4 days.\n"


def test_command__bad_max_days__one_line_error():
    with pytest.raises(CommandError, match="--max-days must be at least 1"):
        call_command("textclass_rollup", "--max-days", "0")
