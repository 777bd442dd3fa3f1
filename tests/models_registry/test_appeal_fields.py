"""What the registry keeps for the affected person's notice: the ground on the model card,
the training data's ranges on a version, the appeal window on the routing policy."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from core.errors import ApplicationError
from models_registry import services as registry
from models_registry.selectors import current_policy, policy_in_words
from tests.fixtures import api, register_tiny

pytestmark = pytest.mark.django_db


def test_the_card_has_a_notice_ground(erin):
    model = registry.model_register(
        name="grounded",
        labels=["approve", "deny"],
        favourable_label="approve",
        features=[{"name": "income", "type": "number"}],
        card={"notice_ground": "The credit agreement you applied for."},
        actor=erin,
    )
    assert model.card["notice_ground"] == "The credit agreement you applied for."
    body = api(erin).get("/api/v1/models/grounded/").json()
    assert body["card"]["notice_ground"] == "The credit agreement you applied for."
    card = api(erin).get("/api/v1/models/grounded/card.md").content.decode()
    assert "## Ground of the decisions\nThe credit agreement" in card


def test_a_version_records_what_its_training_data_covered(erin, service, tiny_artifact):
    model = register_tiny(erin, [service.user])
    ranges = {"income": [0, 200], "history": ["good", "fair", "poor"], "bankrupt": [False, True]}
    version = registry.version_upload(
        model=model, artifact=tiny_artifact, actor=erin, training_ranges=ranges
    )
    assert version.training_ranges == ranges
    event = AuditEvent.objects.get(action="version.registered")
    assert json.loads(event.payload)["training_ranges"] == ranges


@pytest.mark.parametrize(
    ("ranges", "field"),
    [
        ({"income": [200, 0]}, "training_ranges.income"),
        ({"income": [0]}, "training_ranges.income"),
        ({"income": [0, "lots"]}, "training_ranges.income"),
        ({"history": ["excellent"]}, "training_ranges.history"),
        ({"bankrupt": [1]}, "training_ranges.bankrupt"),
        ({"shoe_size": [1, 2]}, "training_ranges.shoe_size"),
        ([1, 2], "training_ranges"),
    ],
)
def test_it_refuses_ranges_that_do_not_fit_the_schema(erin, service, tiny_artifact, ranges, field):
    model = register_tiny(erin, [service.user])
    with pytest.raises(ApplicationError) as refused:
        registry.version_upload(
            model=model, artifact=tiny_artifact, actor=erin, training_ranges=ranges
        )
    assert field in refused.value.fields


def test_the_upload_api_takes_training_ranges(erin, service, tiny_artifact):
    register_tiny(erin, [service.user])
    response = api(erin).post(
        "/api/v1/models/tiny/versions/",
        {
            "artifact": SimpleUploadedFile("m.skops", tiny_artifact),
            "training_ranges": json.dumps({"income": [0, 200]}),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["training_ranges"] == {"income": [0, 200]}


def test_the_appeal_window_is_a_policy_setting_of_180_days_by_default(tiny_model, erin):
    policy = current_policy(tiny_model)
    assert policy.appeal_window_days == 180
    assert any("appeal for 180 days" in line for line in policy_in_words(policy))
    changed = registry.policy_update(
        model=tiny_model, changes={"appeal_window_days": 365}, actor=erin, note="test"
    )
    assert changed.appeal_window_days == 365
    for bad in (0, 3651, 1.5, "long"):
        with pytest.raises(ApplicationError) as refused:
            registry.policy_update(
                model=tiny_model, changes={"appeal_window_days": bad}, actor=erin, note="test"
            )
        assert set(refused.value.fields) == {"appeal_window_days"}
    response = api(erin).put(
        "/api/v1/models/tiny/policy/",
        {"appeal_window_days": 200, "note": "A longer window."},
        format="json",
    )
    assert response.status_code == 200 and response.json()["appeal_window_days"] == 200
