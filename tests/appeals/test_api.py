"""The API: access codes and filing for the model's services; appeals for seniors and
auditors (a service sees its own models'), filtered by model, status and overdue; the
attachment only to staff who may see the appeal, as a download."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from appeals import codes
from appeals.models import Appeal, DecisionAccess
from audit.models import AuditEvent
from models_registry import services as registry
from reviews.services import decisions_ingest
from tests.appeals.conftest import GROUNDS, file
from tests.appeals.test_filing import PDF
from tests.fixtures import api, item, register_tiny

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _files(settings, tmp_path):
    settings.APPEAL_FILES_DIR = tmp_path / "appeal-files"


def test_a_service_gets_an_access_code_once(denied, service, settings):
    url = f"/api/v1/decisions/{denied.pk}/access-code/"
    response = service.client().post(url)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"reference", "access_code", "portal_url", "expires_at"}
    assert body["portal_url"] == f"{settings.SITE_URL}/my-decision/"
    assert re.fullmatch(r"[2-9A-Z]{3}-[2-9A-Z]{3}-[2-9A-Z]{3}", body["reference"])
    access = DecisionAccess.objects.get(decision=denied)
    assert codes.normalize(body["access_code"]) not in access.code_hash
    second = service.client().post(url).json()
    assert second["reference"] == body["reference"]
    assert second["access_code"] != body["access_code"]


def test_access_codes_are_for_the_decisions_own_services(denied, other_service, dave, erin):
    url = f"/api/v1/decisions/{denied.pk}/access-code/"
    assert other_service.client().post(url).status_code == 404
    assert api(dave).post(url).status_code == 403
    assert api(erin).post(url).status_code == 403
    assert not DecisionAccess.objects.filter(code_hash__gt="").exists()


def test_a_service_files_on_the_persons_behalf_with_a_document(denied, service):
    body = {
        "grounds": GROUNDS,
        "corrections": {"income": 72},
        "contact_email": "p@example.org",
        "attachment": {"filename": "payslip.pdf", "content_base64": base64.b64encode(PDF).decode()},
    }
    response = service.client().post(f"/api/v1/decisions/{denied.pk}/appeal/", body, format="json")
    assert response.status_code == 201, response.json()
    out = response.json()
    assert (out["status"], out["filed_via"], out["corrections"], out["decision"]) == (
        "submitted",
        "service",
        {"income": 72.0},
        denied.pk,
    )
    assert out["attachment"]["content_type"] == "application/pdf"
    assert out["attachment"]["download_url"] is None  # a service is not staff
    assert out["decided_by"] is None and out["task"]["state"] == "open"
    again = service.client().post(f"/api/v1/decisions/{denied.pk}/appeal/", body, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_appealed"


def test_filing_names_every_bad_field(denied, service):
    body = {
        "grounds": "no",
        "corrections": {"income": "lots"},
        "attachment": {"filename": "x.exe", "content_base64": base64.b64encode(b"MZ..").decode()},
    }
    response = service.client().post(f"/api/v1/decisions/{denied.pk}/appeal/", body, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) >= {"grounds", "corrections.income"}
    bad_file = {**body, "grounds": GROUNDS, "corrections": {}}
    response = service.client().post(
        f"/api/v1/decisions/{denied.pk}/appeal/", bad_file, format="json"
    )
    assert response.status_code == 400 and "attachment" in response.json()["error"]["fields"]
    assert not Appeal.objects.exists()


def test_a_pending_decision_is_a_409_saying_when_to_come_back(pending, service):
    body = {"grounds": GROUNDS}
    url = f"/api/v1/decisions/{pending.pk}/appeal/"
    response = service.client().post(url, body, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_final" and "come_back" in error


@pytest.fixture
def appeals_of_two_models(denied, approved, erin, service, other_service, tiny_artifact):
    other = register_tiny(erin, [other_service.user], name="other")
    version = registry.version_upload(model=other, artifact=tiny_artifact, actor=erin)
    registry.version_promote(version=version, actor=erin)
    theirs = decisions_ingest(items=[item(50, model="other")], actor=other_service.user)
    late = file(denied, attachment=("a.pdf", PDF))
    Appeal.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(days=1))
    return late, file(approved), file(theirs[0].decision)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return sorted(a["id"] for a in response.json()["results"])


def test_seniors_and_auditors_see_every_appeal_a_service_its_own(
    appeals_of_two_models, carol, dave, alice, erin, service, other_service
):
    late, mine, theirs = appeals_of_two_models
    every = sorted(a.pk for a in appeals_of_two_models)
    assert ids(api(carol).get("/api/v1/appeals/")) == every
    assert ids(api(dave).get("/api/v1/appeals/")) == every
    assert ids(service.client().get("/api/v1/appeals/")) == sorted([late.pk, mine.pk])
    assert ids(other_service.client().get("/api/v1/appeals/")) == [theirs.pk]
    assert api(alice).get("/api/v1/appeals/").status_code == 403
    assert api(erin).get("/api/v1/appeals/").status_code == 403
    assert service.client().get(f"/api/v1/appeals/{theirs.pk}/").status_code == 404
    detail = api(dave).get(f"/api/v1/appeals/{late.pk}/")
    assert detail.status_code == 200
    assert detail.json()["attachment"]["download_url"] == f"/appeals/{late.pk}/attachment/"
    assert AuditEvent.objects.filter(action="appeal.viewed", actor="user:dave").exists()


def test_the_list_filters_by_model_status_and_overdue(appeals_of_two_models, carol):
    late, mine, theirs = appeals_of_two_models
    client = api(carol)
    assert ids(client.get("/api/v1/appeals/?model=other")) == [theirs.pk]
    assert ids(client.get("/api/v1/appeals/?overdue=true")) == [late.pk]
    assert ids(client.get("/api/v1/appeals/?overdue=false")) == sorted([mine.pk, theirs.pk])
    assert ids(client.get("/api/v1/appeals/?status=submitted")) == sorted(
        a.pk for a in appeals_of_two_models
    )
    assert ids(client.get("/api/v1/appeals/?status=upheld")) == []
    bad = client.get("/api/v1/appeals/?status=lost")
    assert bad.status_code == 400 and "status" in bad.json()["error"]["fields"]
    response = api(carol).get("/api/v1/appeals/?overdue=true").json()["results"][0]
    assert response["overdue"] is True


def test_the_attachment_is_a_download_for_staff_only(
    appeals_of_two_models, carol, dave, alice, erin
):
    late = appeals_of_two_models[0]
    url = f"/appeals/{late.pk}/attachment/"
    for user in (carol, dave):
        client = Client()
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["Content-Type"] == "application/octet-stream"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert b"".join(response.streaming_content) == PDF
    for user in (alice, erin):
        client = Client()
        client.force_login(user)
        assert client.get(url).status_code == 403
    assert Client().get(url).status_code == 302  # to the login page
    assert AuditEvent.objects.filter(action="appeal.attachment_viewed").count() == 2


def test_the_staff_list_page_filters(appeals_of_two_models, dave):
    client = Client()
    client.force_login(dave)
    page = client.get("/appeals/?overdue=yes").content.decode()
    late = appeals_of_two_models[0]
    assert f"#{late.pk}" in page and "overdue" in page
    assert f"#{appeals_of_two_models[1].pk}<" not in page
    assert "Take the next appeal" not in page  # auditors read; seniors decide
