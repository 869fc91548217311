"""DRF's conventions: the project's REST_FRAMEWORK defaults apply unless TEXTCLASS overrides
them, and a router serves an API root at /api/."""

import pytest
from rest_framework.test import APIClient

from django_textclass.models import ClassificationRequest
from tests.api.helpers import LIST_URL, client_for, stored

pytestmark = pytest.mark.django_db

ROOT_URL = "/api/"
IS_ADMIN = ["rest_framework.permissions.IsAdminUser"]
ALLOW_ANY = ["rest_framework.permissions.AllowAny"]
TWO_PER_MINUTE = "tests.api.project.TwoPerMinute"


@pytest.fixture
def rest(settings):
    """Set keys of REST_FRAMEWORK on top of the test settings'."""

    def update(**keys):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **keys}

    return update


@pytest.fixture
def textclass(settings):
    def update(**keys):
        settings.TEXTCLASS = {**settings.TEXTCLASS, **keys}

    return update


def test_permissions__the_projects_default_applies(api, staff_api, rest):
    rest(DEFAULT_PERMISSION_CLASSES=IS_ADMIN)

    assert api.get(LIST_URL).status_code == 403
    assert api.post(LIST_URL, {"text": "hello"}, format="json").status_code == 403
    assert staff_api.get(LIST_URL).status_code == 200
    assert ClassificationRequest.objects.count() == 0


def test_permissions__textclass_overrides_the_projects_default(api, rest, textclass):
    rest(DEFAULT_PERMISSION_CLASSES=IS_ADMIN)
    textclass(API_PERMISSION_CLASSES=["rest_framework.permissions.IsAuthenticated"])

    assert api.get(LIST_URL).status_code == 200


def test_permissions__allow_any_by_the_project_lets_anonymous_clients_submit(rest):
    rest(DEFAULT_PERMISSION_CLASSES=ALLOW_ANY)
    anonymous = APIClient()

    response = anonymous.post(LIST_URL, {"text": "hello"}, format="json")

    assert response.status_code == 202
    assert ClassificationRequest.objects.get().owner is None
    assert anonymous.get(LIST_URL).json()["results"] == []  # nobody reads it back


def test_throttles__the_projects_default_applies_to_reads_too(api, rest):
    rest(DEFAULT_THROTTLE_CLASSES=[TWO_PER_MINUTE])

    codes = [api.get(LIST_URL).status_code for _ in range(3)]

    assert codes == [200, 200, 429]


def test_throttles__textclass_overrides_the_projects_default(api, rest, textclass):
    rest(DEFAULT_THROTTLE_CLASSES=[TWO_PER_MINUTE])
    textclass(API_THROTTLE_CLASSES=[])

    assert [api.get(LIST_URL).status_code for _ in range(3)] == [200, 200, 200]


def test_throttles__the_submit_rate_still_comes_on_top(api, rest, textclass):
    rest(DEFAULT_THROTTLE_CLASSES=[TWO_PER_MINUTE])
    textclass(API_THROTTLE_RATE="1/minute")

    codes = [api.post(LIST_URL, {"text": "hi"}, format="json").status_code for _ in range(2)]

    assert codes == [202, 429]
    assert ClassificationRequest.objects.count() == 1


def test_api_root__links_every_endpoint_without_an_argument(api):
    response = api.get(ROOT_URL)

    assert response.status_code == 200
    assert response.json() == {
        "classifications": "http://testserver/api/classifications/",
        "stats": "http://testserver/api/stats/",
        "schema": "http://testserver/api/schema/",
    }


def test_api_root__under_the_apis_permissions():
    assert APIClient().get(ROOT_URL).status_code in (401, 403)


def test_api_root__browsable_in_a_browser(alice):
    client = APIClient()
    client.force_login(alice)

    response = client.get(ROOT_URL, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert b"/api/classifications/" in response.content


def test_router__ids_with_a_dot_get_the_apis_404(api, alice):
    stored(alice)

    response = api.get(LIST_URL + "not.an.id/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No such classification request."}


def test_router__url_names_unchanged():
    from django.urls import reverse

    assert reverse("textclass_api:api-root") == "/api/"
    assert reverse("textclass_api:classification-list") == LIST_URL
    assert reverse("textclass_api:classification-detail", kwargs={"id": "x"}) == LIST_URL + "x/"
    assert reverse("textclass_api:classification-retry", kwargs={"id": "x"}) == (
        LIST_URL + "x/retry/"
    )
    assert reverse("textclass_api:classification-cancel", kwargs={"id": "x"}) == (
        LIST_URL + "x/cancel/"
    )


def test_client_for_is_a_token_client(alice):
    # The fixtures' clients authenticate by token: the permission tests above use them.
    assert client_for(alice)._credentials["HTTP_AUTHORIZATION"].startswith("Token ")
