"""The history's filters as django-filter declares them: the browsable API's Filters form, the
schema's parameters, and values that a Django form would read differently from the API."""

import pytest
from rest_framework.test import APIClient

from django_textclass.api.filters import HistoryFilterSet
from django_textclass.models import ClassificationRequest, Status
from tests.api.helpers import LIST_URL, stored

pytestmark = pytest.mark.django_db

FILTERS = [
    "status",
    "model",
    "key",
    "label",
    "created_after",
    "created_before",
    "source_type",
    "source_id",
]


def test_filterset__declares_every_filter_of_the_history():
    assert sorted(HistoryFilterSet.base_filters) == sorted(FILTERS)


def test_browsable_list__shows_the_filters_form(alice):
    client = APIClient()
    client.force_login(alice)

    response = client.get(LIST_URL, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h2>Filters</h2>" in page
    for name in FILTERS:
        assert f'name="{name}"' in page, name


def test_browsable_list__filters_form_keeps_the_values_given(alice):
    client = APIClient()
    client.force_login(alice)

    page = client.get(LIST_URL + "?label=POSITIVE", HTTP_ACCEPT="text/html").content.decode()

    assert 'name="label" value="POSITIVE"' in page


def test_schema__the_filters_are_typed_query_parameters():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    parameters = {
        p["name"]: p for p in schema["paths"]["/api/classifications/"]["get"]["parameters"]
    }

    assert all(parameters[name]["in"] == "query" for name in FILTERS)
    assert parameters["created_after"]["schema"] == {"type": "string", "format": "date-time"}
    assert parameters["status"]["schema"] == {"type": "string"}
    assert "comma-separated" in parameters["status"]["description"]
    assert parameters["source_type"]["schema"] == {"type": "string"}  # not the foreign key's id


@pytest.mark.parametrize("value", ["50%", "%s", "%(reason)s", "%d%%"])
def test_percent_signs_in_a_bad_value__echoed_as_sent(api, value):
    response = api.get(LIST_URL, {"status": value})

    assert response.status_code == 400
    assert value in response.json()["status"][0]


def test_whitespace_around_a_value__trimmed_as_drf_does(api, alice):
    row = stored(alice, status=Status.FAILED)
    stored(alice)

    response = api.get(LIST_URL, {"status": " failed ", "label": ""})

    assert [item["id"] for item in response.json()["results"]] == [str(row.uuid)]


def test_only_spaces__refused_like_any_blank_value(api):
    response = api.get(LIST_URL, {"model": "   "})

    assert response.status_code == 400
    assert "blank" in response.json()["model"][0]


def test_bad_source_type_with_source_id__only_the_bad_value_is_named(api):
    response = api.get(LIST_URL, {"source_type": "nope.nothing", "source_id": "1"})

    assert response.status_code == 400
    assert response.json() == {
        "source_type": ["Unknown source type; use app_label.model, e.g. blog.comment."]
    }


def test_detail__query_string_ignored(api, alice):
    row = stored(alice)

    response = api.get(f"{LIST_URL}{row.uuid}/", {"status": "nonsense"})

    assert response.status_code == 200
    assert ClassificationRequest.objects.count() == 1
