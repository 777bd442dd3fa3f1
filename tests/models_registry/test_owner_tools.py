"""A model owner's tools on the pages: uploading a version, granting services, the required
change note, readable labels and metric tables; and a service told "not found or not
granted" for a model it may not use."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from core.errors import ApplicationError
from models_registry import services
from models_registry.models import ModelVersion, RoutingPolicy
from models_registry.selectors import metric_tables
from tests.fixtures import item, make_user

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- versions through the page --------------------------------------------------------------


def test_the_owner_uploads_a_version_on_the_page(tiny_model, erin, tiny_artifact):
    client = logged_in(erin)
    assert "Upload a version" in client.get("/models/tiny/").content.decode()
    page = client.get("/models/tiny/versions/new/").content.decode()
    assert (
        'enctype="multipart/form-data"' in page
        and 'aria-describedby="id_artifact_helptext"' in page
    )
    metrics = {"overall": {"accuracy": 0.9, "n": 40}}
    response = client.post(
        "/models/tiny/versions/new/",
        {
            "artifact": SimpleUploadedFile("m.skops", tiny_artifact),
            "metrics": json.dumps(metrics),
            "training_ranges": json.dumps({"income": [0, 300]}),
            "notes": "From the page.",
        },
    )
    assert response.status_code == 302
    version = ModelVersion.objects.get(model=tiny_model, number=2)
    assert version.status == "candidate" and version.metrics == metrics
    assert version.training_ranges == {"income": [0, 300]} and version.notes == "From the page."
    assert AuditEvent.objects.filter(action="version.registered").count() == 2


def test_a_bad_upload_says_why_beside_the_field(tiny_model, erin):
    response = logged_in(erin).post(
        "/models/tiny/versions/new/",
        {"artifact": SimpleUploadedFile("m.skops", b"not a skops file"), "metrics": "{oops"},
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_metrics_error"' in page and "not valid JSON" in page
    assert ModelVersion.objects.filter(model=tiny_model).count() == 1


def test_only_the_owner_uploads_on_the_page(tiny_model, dave):
    mallory = make_user("mallory", "model_owner")
    assert logged_in(mallory).get("/models/tiny/versions/new/").status_code == 403
    assert logged_in(dave).get("/models/tiny/versions/new/").status_code == 403


# --- services granted by the owner ------------------------------------------------------------


def test_the_owner_grants_and_revokes_a_service_on_the_model_page(tiny_model, erin, other_service):
    client = logged_in(erin)
    page = client.get("/models/tiny/").content.decode()
    assert "svc-other-scorer" in page  # offered, not yet granted
    client.post("/models/tiny/services/", {"service": "svc-other-scorer"})
    assert tiny_model.services.filter(username="svc-other-scorer").exists()
    assert other_service.client().get("/api/v1/models/tiny/").status_code == 200
    client.post("/models/tiny/services/svc-other-scorer/revoke/")
    assert not tiny_model.services.filter(username="svc-other-scorer").exists()
    actions = list(
        AuditEvent.objects.filter(object_type="mlmodel").values_list("action", flat=True)
    )
    assert {"model.service_granted", "model.service_revoked"} <= set(actions)


def test_nobody_else_grants_and_only_services_are_granted(tiny_model, erin, alice, other_service):
    mallory = make_user("mallory", "model_owner")
    assert (
        logged_in(mallory)
        .post("/models/tiny/services/", {"service": "svc-other-scorer"})
        .status_code
        == 403
    )
    with pytest.raises(ApplicationError):
        services.model_services_grant(model=tiny_model, service=other_service.user, actor=mallory)
    response = logged_in(erin).post("/models/tiny/services/", {"service": "alice"}, follow=True)
    assert "does not have the model_service role" in response.content.decode()
    assert not tiny_model.services.filter(username="alice").exists()


def test_the_command_grants_models_to_the_new_service(tiny_model, capsys):
    call_command("create_service_token", "newcomer", "--model", "tiny", "--model", "tiny")
    token = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/models/tiny/").status_code == 200
    assert AuditEvent.objects.filter(action="model.service_granted").count() == 1


def test_the_command_refuses_an_unknown_model_and_makes_no_token(tiny_model):
    with pytest.raises(CommandError, match="No registered model named 'nope'"):
        call_command("create_service_token", "newcomer", "--model", "nope")
    assert not AuditEvent.objects.filter(
        action="service_token.created", payload__contains="newcomer"
    ).exists()


def test_a_service_asking_for_a_model_not_granted_is_told_so(tiny_model, other_service):
    client = other_service.client()
    for url in ("/api/v1/models/tiny/", "/api/v1/models/nope/", "/api/v1/models/tiny/labels/"):
        response = client.get(url)
        assert response.status_code == 404
        assert "not found or not granted" in response.json()["error"]["message"]
    response = client.post("/api/v1/decisions/", item(1), format="json")
    assert response.status_code == 400
    assert "not found or not granted" in response.json()["error"]["fields"]["model"][0]


# --- the policy page ------------------------------------------------------------------------


def test_the_policy_change_note_is_required_on_the_page_and_in_the_service(tiny_model, erin):
    fields = {"confidence_threshold": "0.7", "high_stakes": "[]", "random_audit_rate": "5",
              "active_learning_budget": "0", "active_learning_max_margin": "0.2",
              "reviewers_required": "1", "sla_hours": "24"}  # fmt: skip
    response = logged_in(erin).post("/models/tiny/policy/", fields)
    page = response.content.decode()
    assert response.status_code == 400 and 'id="id_note_error"' in page
    assert RoutingPolicy.objects.filter(model=tiny_model).count() == 1
    with pytest.raises(ApplicationError) as refused:
        services.policy_update(model=tiny_model, changes={"sla_hours": 12}, actor=erin, note=" ")
    assert set(refused.value.fields) == {"note"}


def test_the_policy_form_reads_as_words(tiny_model, erin):
    page = logged_in(erin).get("/models/tiny/policy/").content.decode()
    assert "Reviews due within (hours)" in page and "Sla hours" not in page
    assert "Random audit rate (%)" in page and 'id="preview"' in page
    assert 'aria-describedby="id_sla_hours_helptext"' in page


def test_metric_tables_have_one_column_order_and_readable_headers():
    metrics = {
        "overall": {"auc": 0.8, "n": 100, "accuracy": 0.9, "zeta_score": 1.0},
        "by_group": {"sex": {"female": {"accuracy": 0.88, "n": 50, "auc": 0.79},
                             "male": {"n": 50, "accuracy": 0.92}}},
    }  # fmt: skip
    overall, by_sex = metric_tables(metrics)
    assert overall["columns"] == by_sex["columns"] == ["Cases", "Accuracy", "AUC", "Zeta score"]
    assert by_sex["rows"][1] == ["male", "50", "0.920", "", ""]
