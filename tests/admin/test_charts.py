"""The SVG chart helpers."""

from datetime import date, datetime, timezone

from django_textclass.admin import charts


def test_hbars__escapes_labels_and_has_an_accessible_name():
    svg = str(charts.hbars([("<script>x</script>", 3), ("b", 1)], title="T & co", description="D"))

    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'role="img"' in svg and "<title" in svg and "T &amp; co" in svg
    assert svg.count("<rect") == 2


def test_empty_data__says_so():
    assert "No data" in str(charts.hbars([], title="t", description="d"))
    assert "No data" in str(charts.columns([("a", 0)], title="t", description="d"))


def test_stacked_columns__one_rect_per_non_zero_segment_and_a_legend():
    svg = str(
        charts.stacked_columns(
            [("d1", {"A": 2, "B": 1}), ("d2", {"A": 0, "B": 4})],
            ["A", "B"],
            title="t",
            description="d",
        )
    )

    # 3 segments + 2 legend swatches.
    assert svg.count("<rect") == 5
    assert "<title>d2: B 4</title>" in svg


def test_time_axis__fills_gaps():
    days = charts.time_axis(["2026-03-01T00:00:00+00:00", "2026-03-04T00:00:00+00:00"], "day")
    hours = charts.time_axis(["2026-03-01T10:00:00+00:00", "2026-03-01T12:00:00+00:00"], "hour")

    assert days == [date(2026, 3, d) for d in (1, 2, 3, 4)]
    assert hours == [datetime(2026, 3, 1, h, tzinfo=timezone.utc) for h in (10, 11, 12)]


def test_time_axis__daylight_saving_day_is_one_bucket():
    # Europe/Paris: 2026-03-29 is 23 hours long; the buckets are still consecutive dates.
    axis = charts.time_axis(["2026-03-28T00:00:00+01:00", "2026-03-30T00:00:00+02:00"], "day")

    assert axis == [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]


def test_nice_ceiling():
    assert [charts._nice_ceiling(v) for v in (0, 7, 13, 230, 4100)] == [1, 10, 20, 250, 5000]
