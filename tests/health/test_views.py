"""The JSON health view: who may read it, and what its status code says."""

import json

import pytest
from django.urls import reverse

from tests.health.helpers import open_circuit, request, swept

pytestmark = pytest.mark.django_db

URL = reverse("textclass_health:health")
TOKEN = "health-token-for-the-tests-0123456789"


@pytest.fixture
def with_token(settings):
    settings.TEXTCLASS = {**settings.TEXTCLASS, "HEALTH_TOKEN": TOKEN}


def test_health__staff_reads_the_report(client, staff):
    swept(5)
    request("pending", age=30)
    client.force_login(staff)

    response = client.get(URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok" and body["backlog"]["pending"] == 1
    assert set(body) == {
        "status",
        "checked_at",
        "problems",
        "backlog",
        "sweep",
        "backends",
        "failure_rate",
        "thresholds",
    }


@pytest.mark.parametrize("who", ["anonymous", "user", "inactive staff"])
def test_health__others_get_403_and_no_internals(client, django_user_model, who):
    request("pending", age=4000, error_code="http_503")
    if who == "user":
        client.force_login(django_user_model.objects.create_user("u"))
    elif who == "inactive staff":
        user = django_user_model.objects.create_user("s", is_staff=True, is_active=False)
        client.force_login(user)

    response = client.get(URL)

    assert response.status_code == 403
    assert set(response.json()) == {"error"}
    assert "pending" not in response.content.decode()


def test_health__a_monitor_with_the_token(client, with_token):
    swept(5)

    response = client.get(URL, headers={"authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}x",
        f"Token {TOKEN}",
        TOKEN,
        "Bearer ",
        "Bearer",
        "",
        f"Bearer {TOKEN[:-1]}",
    ],
)
def test_health__a_wrong_token_is_refused(client, with_token, header):
    response = client.get(URL, headers={"authorization": header})

    assert response.status_code == 403


def test_health__no_token_configured_means_no_token_works(client):
    response = client.get(URL, headers={"authorization": "Bearer None"})

    assert response.status_code == 403


def test_health__the_token_is_not_read_from_the_query_string(client, with_token):
    response = client.get(URL, {"token": TOKEN})

    assert response.status_code == 403


def test_health__critical_answers_503_warning_200(client, staff):
    client.force_login(staff)
    swept(5)
    request("pending", age=400)
    assert client.get(URL).status_code == 200
    assert client.get(URL).json()["status"] == "warning"

    open_circuit(opened=5)
    response = client.get(URL)

    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["status"] == "critical"
    assert any("circuit open" in problem for problem in body["problems"])


def test_health__only_safe_methods(client, staff):
    client.force_login(staff)

    assert client.post(URL).status_code == 405
    assert client.head(URL).status_code == 200


def test_health__never_shows_the_hugging_face_token(client, staff, settings):
    client.force_login(staff)
    open_circuit()

    body = client.get(URL).content.decode()

    token = settings.TEXTCLASS["BACKENDS"]["default"]["OPTIONS"]["TOKEN"]
    assert token not in body and "OPTIONS" not in body
