"""The history admin on a site with a model registry: the key column, its filter, the detail."""

import csv
import io

import pytest
from django.urls import reverse

from tests.admin.data import MODEL, make_request
from tests.fakes import textclass_settings

URL = reverse("admin:django_textclass_classificationrequest_changelist")
MODELS = {
    "sentiment": {"MODEL": MODEL, "REVISION": "714eb0f"},
    "toxicity": {"MODEL": "unitary/toxic-bert"},
}


@pytest.fixture
def rows(db):
    return {
        "keyed": make_request(text="keyed", model_key="sentiment", revision="714eb0f"),
        "toxic": make_request(text="toxic", model_key="toxicity"),
        "plain": make_request(text="plain"),
        "retired": make_request(text="retired", model_key="old-key"),
    }


def shown(response):
    assert response.status_code == 200
    return {row.text for row in response.context["cl"].result_list}


def test_changelist__key_column_with_its_revision(admin_client, rows):
    with textclass_settings(MODELS=MODELS):
        body = admin_client.get(URL).content.decode()

    assert 'column-key_display"' in body
    assert 'sentiment <span class="textclass-revision">@ 714eb0f</span>' in body


def test_changelist__no_key_column_without_a_registry(admin_client, rows):
    body = admin_client.get(URL).content.decode()

    assert "column-key_display" not in body
    assert "model key" not in body.lower()  # nor its filter


def test_filter__by_key_lists_the_configured_keys(admin_client, rows):
    with textclass_settings(MODELS=MODELS):
        response = admin_client.get(URL, {"model_key": "sentiment"})
        body = response.content.decode()

    assert shown(response) == {"keyed"}
    assert "?model_key=toxicity" in body  # the other choice


@pytest.mark.parametrize("models", [MODELS, {}])
def test_filter__a_key_no_longer_configured_still_filters(admin_client, rows, models):
    with textclass_settings(MODELS=models):
        assert shown(admin_client.get(URL, {"model_key": "old-key"})) == {"retired"}


def test_detail__shows_key_and_revision(admin_client, rows):
    url = reverse("admin:django_textclass_classificationrequest_change", args=[rows["keyed"].pk])

    body = admin_client.get(url).content.decode()

    assert "Model key:" in body and ">sentiment<" in body
    assert "Revision:" in body and ">714eb0f<" in body


def test_export__key_and_revision_columns(admin_client, rows):
    response = admin_client.get(
        reverse("admin:django_textclass_classificationrequest_export"), {"model_key": "sentiment"}
    )

    content = b"".join(response.streaming_content).decode()
    (row,) = list(csv.DictReader(io.StringIO(content)))
    assert (row["model_key"], row["revision"]) == ("sentiment", "714eb0f")
