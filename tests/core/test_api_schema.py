from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    for path in ("/api/v1/models/", "/api/v1/decisions/bulk/", "/api/v1/models/{name}/policy/"):
        assert f"  {path}:" in text, path


def test_the_schema_and_docs_are_served():
    client = Client()
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()  # Swagger UI comes from the sidecar package


# --- what the schema says --------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _routes(patterns, prefix: str = ""):
    from django.urls import URLResolver

    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield route


def _ref(schema: dict, part: dict) -> dict:
    return schema["components"]["schemas"][part["$ref"].rsplit("/", 1)[1]]


def test_it_documents_every_url_under_api_v1(schema):
    import re

    from django.urls import get_resolver

    routes = [r for r in _routes(get_resolver().url_patterns) if r.startswith("api/v1/")]
    assert len(routes) > 20
    for route in routes:
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        assert path in schema["paths"], path


def test_it_documents_the_decision_list_as_a_cursor_page(schema):
    response = schema["paths"]["/api/v1/decisions/"]["get"]["responses"]["200"]
    page = _ref(schema, response["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"next", "previous", "results"}
    results = page["properties"]["results"]
    assert results["type"] == "array"
    decision = _ref(schema, results["items"])
    assert decision["properties"]["model_version"].get("nullable") is True


def test_it_documents_errors_with_the_one_error_body(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            if method in ("post", "put"):
                assert "409" in responses, (method, path)
    bulk = schema["paths"]["/api/v1/decisions/bulk/"]["post"]["responses"]
    body = _ref(schema, bulk["400"]["content"]["application/json"]["schema"])
    detail = _ref(schema, body["properties"]["error"])
    assert set(detail["properties"]) == {"code", "message", "fields"}
    policy = schema["paths"]["/api/v1/models/{name}/policy/"]["put"]["responses"]
    assert policy["400"]["content"] == bulk["400"]["content"]  # the same component, reused


def test_it_takes_json_everywhere_but_the_version_upload(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = list(operation.get("requestBody", {}).get("content", {}))
            if path == "/api/v1/models/{name}/versions/" and method == "post":
                assert content == ["multipart/form-data"]
            elif content:
                assert content == ["application/json"], (method, path)


def test_a_json_endpoint_refuses_a_multipart_body(erin):
    from tests.fixtures import api

    response = api(erin).post("/api/v1/models/", {"name": "x"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_the_docs_group_every_operation_with_a_summary_and_an_example_body(schema):
    from core.api_docs import ORDER

    assert [tag["name"] for tag in schema["tags"]] == ORDER
    assert all(tag["description"] for tag in schema["tags"])
    lacking = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if len(operation.get("tags", [])) != 1 or operation["tags"][0] not in ORDER:
                lacking.append(f"{method} {path}: tag {operation.get('tags')}")
            if not operation.get("summary"):
                lacking.append(f"{method} {path}: no summary")
            bodies = operation.get("requestBody", {}).get("content", {}).values()
            if bodies and not any(body.get("examples") for body in bodies):
                lacking.append(f"{method} {path}: no example body")
    assert not lacking, "\n".join(lacking)
