"""Deeply nested JSON is bad input, never a server error."""

from __future__ import annotations

import json

import pytest

from reviews.models import Decision
from tests.fixtures import api, item, register_tiny
from tests.models_registry.test_registry_api import upload

pytestmark = pytest.mark.django_db

TOO_DEEP = "[" * 100_000 + "]" * 100_000


def test_a_body_nested_past_the_recursion_limit_is_a_400(tiny_model, service):
    response = service.client().post(
        "/api/v1/decisions/", TOO_DEEP, content_type="application/json"
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]
    assert not Decision.objects.exists()


def test_a_feature_nested_within_the_limit_is_refused_by_name(tiny_model, service):
    body = item(1)
    body["features"]["income"] = json.loads("[" * 500 + "]" * 500)
    response = service.client().post("/api/v1/decisions/", body, format="json")
    assert response.status_code == 400
    assert "features.income" in response.json()["error"]["fields"]
    assert not Decision.objects.exists()


def test_multipart_metrics_nested_too_deeply_are_a_400_naming_them(erin, service, tiny_artifact):
    register_tiny(erin, [service.user])
    response = upload(api(erin), tiny_artifact, metrics=TOO_DEEP)
    assert response.status_code == 400
    assert "metrics" in response.json()["error"]["fields"]
