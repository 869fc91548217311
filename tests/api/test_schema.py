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


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/api/classifications/", "post", {"200", "202", "400", "401", "403", "413", "422", "429"}),
        ("/api/classifications/", "get", {"200", "400", "401", "403", "404"}),
        ("/api/classifications/{id}/", "get", {"200", "401", "403", "404"}),
        ("/api/classifications/{id}/retry/", "post", {"202", "404", "409", "429"}),
        ("/api/classifications/{id}/cancel/", "post", {"200", "404", "409"}),
        ("/api/stats/", "get", {"200", "400"}),
        (
            "/api/models/{model_id}",
            "post",
            {"200", "400", "401", "409", "413", "429", "502", "503"},
        ),
    ],
)
def test_every_endpoint__documents_its_status_codes(schema, path, method, codes):
    operation = schema["paths"][path][method]

    assert codes <= set(operation["responses"]), set(operation["responses"])
    assert operation.get("summary")


def test_list__documents_the_filters_and_cursor(schema):
    names = {p["name"] for p in schema["paths"]["/api/classifications/"]["get"]["parameters"]}

    assert {
        "status",
        "model",
        "label",
        "created_after",
        "created_before",
        "source_type",
        "source_id",
        "cursor",
        "page_size",
    } <= names


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

    assert {"id", "status", "owner", "result", "attempts", "error"} <= set(component["properties"])
    assert set(component["required"]) >= {"id", "status", "result"}


# --- links: which answer gives the id the next call takes --------------------------------


def _operations(schema):
    return {
        operation["operationId"]: (path, operation)
        for path, methods in schema["paths"].items()
        for operation in methods.values()
    }


@pytest.mark.parametrize(
    ("path", "method", "code", "targets"),
    [
        (
            "/api/classifications/",
            "post",
            "202",
            {
                "classifications_retrieve",
                "classifications_cancel_create",
                "classifications_retry_create",
            },
        ),
        (
            "/api/classifications/",
            "post",
            "200",
            {
                "classifications_retrieve",
                "classifications_cancel_create",
                "classifications_retry_create",
            },
        ),
        (
            "/api/classifications/",
            "get",
            "200",
            {
                "classifications_retrieve",
                "classifications_cancel_create",
                "classifications_retry_create",
            },
        ),
        (
            "/api/classifications/{id}/",
            "get",
            "200",
            {"classifications_cancel_create", "classifications_retry_create"},
        ),
        (
            "/api/classifications/{id}/cancel/",
            "post",
            "200",
            {"classifications_retrieve", "classifications_retry_create"},
        ),
        (
            "/api/classifications/{id}/retry/",
            "post",
            "202",
            {"classifications_retrieve", "classifications_cancel_create"},
        ),
        ("/api/models/{model_id}", "post", "503", {"classifications_retrieve"}),
    ],
)
def test_links__each_answer_names_the_calls_its_id_feeds(schema, path, method, code, targets):
    links = schema["paths"][path][method]["responses"][code]["links"]

    assert {link["operationId"] for link in links.values()} == targets


def test_links__every_target_exists_and_takes_the_parameter_given(schema):
    operations = _operations(schema)
    seen = 0
    for _, operation in operations.values():
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                _, target = operations[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                assert set(link["parameters"]) <= names, (link, names)
                seen += 1
    assert seen >= 19


def test_links__the_ids_hold_wherever_the_api_is_mounted(settings):
    from drf_spectacular.generators import SchemaGenerator

    settings.ROOT_URLCONF = "tests.api.urls_elsewhere"
    document = SchemaGenerator().get_schema(request=None, public=True)

    operations = _operations(document)
    assert operations["classifications_retrieve"][0] == (
        "/somewhere/else/api/classifications/{id}/"
    )
    assert {"classifications_create", "models_create", "classifications_cancel_create"} <= set(
        operations
    )


def test_links__a_projects_own_schema_class_still_describes_the_views(settings):
    from drf_spectacular.generators import SchemaGenerator

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_SCHEMA_CLASS": "tests.api.urls_elsewhere.SiteSchema",
    }
    document = SchemaGenerator().get_schema(request=None, public=True)

    operation = document["paths"]["/api/classifications/{id}/"]["get"]
    assert operation["x-site-schema"] is True  # the project's class ran ...
    assert operation["responses"]["200"]["links"]  # ... and the links were added
