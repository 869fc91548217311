"""The health report's parts and their levels, against rows in a known state."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_textclass import health
from django_textclass.exceptions import TextClassConfigurationError
from django_textclass.models import BackendPace
from tests.health.helpers import open_circuit, request, swept

pytestmark = pytest.mark.django_db


def test_report__ok_when_nothing_waits(settings):
    swept(5)

    report = health.report()

    assert report["status"] == "ok" and report["problems"] == []
    assert report["backlog"] == {
        "status": "ok",
        "pending": 0,
        "running": 0,
        "due": 0,
        "oldest_pending_created_at": None,
        "oldest_pending_age_seconds": None,
    }
    assert report["sweep"]["status"] == "ok" and 4 < report["sweep"]["age_seconds"] < 60
    # Every configured alias is listed, closed, though no worker has written a row yet.
    assert [(p["backend"], p["circuit"], p["status"]) for p in report["backends"]] == [
        (alias, "closed", "ok") for alias in ("default", "endpoint", "offline", "tei", "tei-root")
    ]
    assert report["failure_rate"]["rate"] is None
    assert report["thresholds"] == health.DEFAULT_THRESHOLDS


def test_backlog__counts_and_the_oldest_pending_age(settings):
    request("pending", age=100)
    request("pending", age=10, due_in=60)  # backing off: pending, not due
    request("running", age=5)
    request("succeeded", age=5000)  # final rows are no backlog, however old

    part = health.backlog()

    assert (part["pending"], part["running"], part["due"]) == (2, 1, 1)
    assert 99 < part["oldest_pending_age_seconds"] < 130
    assert part["status"] == "ok" and part["problems"] == []


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (299, "ok"),
        (301, "warning"),
        (1799, "warning"),
        (1801, "critical"),
    ],
)
def test_backlog__age_levels(age, expected):
    request("pending", age=age)

    part = health.backlog()

    assert part["status"] == expected
    assert bool(part["problems"]) is (expected != "ok")


def test_backlog__size_judged_only_when_a_threshold_is_set(settings):
    for i in range(3):
        request("pending", text=f"t{i}")
    assert health.backlog()["status"] == "ok"  # BACKLOG_* are None by default

    settings.TEXTCLASS = {
        **settings.TEXTCLASS,
        "HEALTH_THRESHOLDS": {"BACKLOG_WARNING": 1, "BACKLOG_CRITICAL": 2},
    }
    part = health.backlog()

    assert part["status"] == "critical"
    assert part["problems"] == ["3 requests are pending (critical past 2)"]


@pytest.mark.parametrize(
    ("seconds_ago", "expected"),
    [
        (10, "ok"),
        (301, "warning"),
        (901, "critical"),
        (None, "warning"),
    ],
)
def test_sweep__age_levels(seconds_ago, expected):
    if seconds_ago is not None:
        swept(seconds_ago)

    part = health.sweep()

    assert part["status"] == expected
    if seconds_ago is None:
        assert part["last_run_at"] is None and "never ran" in part["problems"][0]


def test_backends__open_circuit_warns_then_turns_critical():
    row = open_circuit(opened=1)
    paces, problems = health.backends()
    default = next(p for p in paces if p["backend"] == "default")
    assert default["status"] == "warning" and default["circuit"] == "open"
    assert 50 < default["waiting_seconds"] <= 60 and default["last_error"] == "http_503"
    assert problems == [
        "backend default: circuit open after 5 failed calls in a row, "
        "opened 1 times in a row (last error http_503)"
    ]

    BackendPace.objects.filter(pk=row.pk).update(opened=3)
    paces, _problems = health.backends()

    assert next(p for p in paces if p["backend"] == "default")["status"] == "critical"
    assert health.report()["status"] == "critical"


def test_backends__a_rate_limit_wait_is_shown_not_judged():
    from datetime import timedelta

    from django.utils import timezone

    BackendPace.objects.create(
        backend="default", reason="rate_limited", not_before=timezone.now() + timedelta(seconds=30)
    )

    paces, problems = health.backends()

    default = next(p for p in paces if p["backend"] == "default")
    assert default["status"] == "ok" and default["reason"] == "rate_limited"
    assert default["waiting_seconds"] > 20 and problems == []


def test_failure_rate__recent_requests_by_error_code():
    for i in range(18):
        request("succeeded", age=60, text=f"ok {i}")
    request("failed", age=60, error_code="http_500", text="f1")
    request("failed", age=60, error_code="http_500", text="f2")
    request("failed", age=60, error_code="timeout", text="f3")
    request("failed", age=5000, error_code="http_404", text="old")  # outside the window
    request("pending", age=60)  # not finished: not in the rate

    part = health.failure_rate()

    assert (part["succeeded"], part["failed"], part["rate"]) == (18, 3, round(3 / 21, 4))
    assert part["by_error_code"] == {"http_500": 2, "timeout": 1}
    assert part["status"] == "warning"  # 14.3 % is past 5 %, not past 25 %


def test_failure_rate__few_requests_are_not_judged():
    request("failed", age=10, error_code="http_500")

    part = health.failure_rate()

    assert part["rate"] == 1.0 and part["status"] == "ok"  # 1 of 1: below the minimum of 20


def test_report__the_worst_part_decides_and_problems_say_why():
    swept(1000)  # critical
    request("pending", age=400)  # warning

    report = health.report()

    assert report["status"] == "critical"
    assert len(report["problems"]) == 2
    assert report["problems"][0].startswith("the oldest pending request was submitted")
    assert report["problems"][1].startswith("the sweep last ran")


@pytest.mark.parametrize(
    "given",
    [
        {"NO_SUCH": 1},
        {"PENDING_AGE_WARNING": "300"},
        {"SWEEP_AGE_CRITICAL": None},
        {"FAILURE_RATE_WARNING": -0.1},
        {"CIRCUIT_OPENINGS_CRITICAL": True},
        ["PENDING_AGE"],
    ],
)
def test_thresholds__bad_values_are_a_configuration_error(settings, given):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "HEALTH_THRESHOLDS": given}

    with pytest.raises(TextClassConfigurationError, match="HEALTH_THRESHOLDS"):
        health.thresholds()
    with pytest.raises(SystemCheckError, match="textclass.E030"):
        call_command("check")


@pytest.mark.parametrize("token", ["", "   ", 12345, b"bytes"])
def test_health_token__must_be_a_non_empty_string(settings, token):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "HEALTH_TOKEN": token}

    with pytest.raises(SystemCheckError, match="textclass.E031"):
        call_command("check")


def test_thresholds__a_site_sets_one_key_the_rest_keep_their_defaults(settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "HEALTH_THRESHOLDS": {"PENDING_AGE_WARNING": 60}}

    limits = health.thresholds()

    assert limits["PENDING_AGE_WARNING"] == 60
    assert limits["PENDING_AGE_CRITICAL"] == health.DEFAULT_THRESHOLDS["PENDING_AGE_CRITICAL"]
