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
