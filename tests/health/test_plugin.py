"""The django-health-check plug-in, through django-health-check's own view (installed)."""

import pytest

from tests.health.helpers import open_circuit, request, swept

pytestmark = pytest.mark.django_db

URL = "/ht/"  # tests/urls.py: HealthCheckView with the Database check and the app's four


def results(client):
    response = client.get(URL, {"format": "json"})
    return response.status_code, response.json()


def test_plugin__all_four_checks_pass_on_a_healthy_pipeline(client):
    swept(5)
    request("pending", age=10)

    status, body = results(client)

    assert status == 200
    assert body == {
        "Database(alias='default')": "OK",
        "Backlog()": "OK",
        "Sweep()": "OK",
        "Backends()": "OK",
        "FailureRate()": "OK",
    }


def test_plugin__warning_and_critical_levels(client):
    swept(5)
    request("pending", age=400)  # warning
    open_circuit(opened=4)  # critical

    status, body = results(client)

    assert status == 500  # django-health-check's answer to any failed check
    assert body["Backlog()"].startswith("Warning: the oldest pending request was submitted")
    assert body["Backends()"].startswith("Unavailable: backend default: circuit open")
    assert body["Sweep()"] == "OK" and body["FailureRate()"] == "OK"


def test_plugin__sweep_never_ran_and_failure_rate(client):
    for i in range(15):
        request("succeeded", age=30, text=f"ok {i}")
    for i in range(10):
        request("failed", age=30, error_code="http_500", text=f"bad {i}")

    status, body = results(client)

    assert status == 500
    assert body["Sweep()"].startswith("Warning: the sweep never ran")
    assert body["FailureRate()"] == (
        "Unavailable: 10 of 25 requests created in the last 900 s failed "
        "(40.0 %, critical past 25 %)"
    )


def test_plugin__html_and_openmetrics_pages_render(client):
    swept(5)

    html = client.get(URL, headers={"accept": "text/html"})
    metrics = client.get(URL, {"format": "openmetrics"}).content.decode()

    assert html.status_code == 200 and b"Backlog" in html.content
    assert 'django_health_check_status{check="FailureRate"} 1' in metrics
