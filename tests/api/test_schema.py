"""The OpenAPI document at /api/schema/: valid, and complete for every endpoint."""

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    document = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(document)  # raises on an invalid OpenAPI 3 document
    return document


def test_schema_served__openapi_3_without_authentication(client):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert "/api/classifications/" in document["paths"]


def test_schema_json_format(client):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert response.json()["paths"]


def test_schema_generation__no_warnings_or_errors(capsys, tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "s.yaml")


@pytest.mark.parametrize(("path", "method", "codes"), [
    ("/api/classifications/", "post", {"200", "202", "400", "401", "403", "413", "422", "429"}),
    ("/api/classifications/", "get", {"200", "400", "401", "403", "404"}),
    ("/api/classifications/{id}/", "get", {"200", "401", "403", "404"}),
    ("/api/classifications/{id}/retry/", "post", {"202", "404", "409", "429"}),
    ("/api/classifications/{id}/cancel/", "post", {"200", "404", "409"}),
    ("/api/stats/", "get", {"200", "400"}),
    ("/api/models/{model_id}", "post",
     {"200", "400", "401", "409", "413", "429", "502", "503"}),
])
def test_every_endpoint__documents_its_status_codes(schema, path, method, codes):
    operation = schema["paths"][path][method]

    assert codes <= set(operation["responses"]), set(operation["responses"])
    assert operation.get("summary")


def test_list__documents_the_filters_and_cursor(schema):
    names = {p["name"] for p in schema["paths"]["/api/classifications/"]["get"]["parameters"]}

    assert {"status", "model", "label", "created_after", "created_before", "source_type",
            "source_id", "cursor", "page_size"} <= names


def test_submit__documents_idempotency_key_and_examples(schema):
    operation = schema["paths"]["/api/classifications/"]["post"]

    assert "Idempotency-Key" in {p["name"] for p in operation["parameters"]}
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert len(examples) >= 3


def test_drop_in__bearer_security_and_headers(schema):
    operation = schema["paths"]["/api/models/{model_id}"]["post"]

    assert {"bearerAuth": []} in operation["security"]
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"x-use-cache", "x-wait-for-model"}


def test_classification__read_only_fields(schema):
    component = schema["components"]["schemas"]["Classification"]

    assert {"id", "status", "owner", "result", "attempts", "error"} <= set(
        component["properties"]
    )
    assert set(component["required"]) >= {"id", "status", "result"}
