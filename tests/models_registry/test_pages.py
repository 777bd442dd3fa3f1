from __future__ import annotations

import json

import pytest
from django.test import Client

from models_registry.models import ModelVersion, RoutingPolicy
from tests.fixtures import make_user

pytestmark = pytest.mark.django_db


def form(**changes) -> dict:
    data = {
        "confidence_threshold": "0.7",
        "high_stakes": "[]",
        "random_audit_rate": "5",
        "active_learning_budget": "0",
        "active_learning_max_margin": "0.2",
        "reviewers_required": "1",
        "sla_hours": "24",
        "note": "from the page",
    }
    data.update(changes)
    return data


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_changes_the_policy_on_the_page(tiny_model, erin):
    client = logged_in(erin)
    assert client.get("/models/tiny/policy/").status_code == 200
    rule = [{"name": "big", "when": {"field": "income", "op": "gt", "value": 300}}]
    response = client.post(
        "/models/tiny/policy/", form(high_stakes=json.dumps(rule), blind_review="on")
    )
    assert response.status_code == 302
    policy = RoutingPolicy.objects.get(model=tiny_model, version=2)
    assert policy.confidence_threshold == 0.7 and policy.blind_review is True
    assert policy.high_stakes == rule and policy.note == "from the page"


def test_a_bad_rule_is_shown_on_the_page_and_nothing_saved(tiny_model, erin):
    rule = [{"name": "big", "when": {"field": "colour", "op": "gt", "value": 3}}]
    response = logged_in(erin).post("/models/tiny/policy/", form(high_stakes=json.dumps(rule)))
    assert response.status_code == 400
    assert "must be outcome, confidence or a feature" in response.content.decode()
    response = logged_in(erin).post("/models/tiny/policy/", form(high_stakes="[not json"))
    assert "not valid JSON" in response.content.decode()
    assert RoutingPolicy.objects.filter(model=tiny_model).count() == 1


def test_other_people_may_not_change_the_policy_or_promote(tiny_model, alice, dave):
    mallory = make_user("mallory", "model_owner")
    for user, expected in ((mallory, 403), (alice, 403), (dave, 403)):
        client = logged_in(user)
        assert client.get("/models/tiny/policy/").status_code == expected
        assert client.post("/models/tiny/policy/", form()).status_code == expected
        assert client.post("/models/tiny/versions/1/promote/").status_code == expected


def test_the_owner_promotes_on_the_card_page(tiny_model, erin, tiny_artifact):
    from models_registry import services

    services.version_upload(model=tiny_model, artifact=tiny_artifact, actor=erin)
    # Nothing to measure it on yet: the promotion gate (learning) wants a justification.
    why = {"justification": "Same training data; re-registered with a new baseline."}
    response = logged_in(erin).post("/models/tiny/versions/2/promote/", why, follow=True)
    assert "Version 2 is now the champion." in response.content.decode()
    assert ModelVersion.objects.get(number=2).status == "champion"
