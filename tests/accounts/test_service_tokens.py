from __future__ import annotations

import hashlib

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.services import service_token_revoke
from audit.models import AuditEvent
from core.models import ServiceToken
from core.roles import MODEL_SERVICE, has_role

pytestmark = pytest.mark.django_db


def test_the_command_prints_a_token_that_is_stored_only_as_a_digest(capsys):
    call_command("create_service_token", "scorer")
    token = capsys.readouterr().out.strip()
    assert token.startswith("ovs_") and len(token) > 40
    row = ServiceToken.objects.get()
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {row.digest, row.prefix, row.name}
    assert has_role(row.user, MODEL_SERVICE)
    event = AuditEvent.objects.get(action="service_token.created")
    assert token not in event.payload


def test_a_token_authenticates_the_service(service):
    response = service.client().get("/api/v1/models/")
    assert response.status_code == 200


def test_a_wrong_token_is_refused_with_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token ovs_not-a-real-token")
    response = client.get("/api/v1/models/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_revoked_token_is_refused(service):
    service_token_revoke(service_token=ServiceToken.objects.get(), actor="user:erin")
    assert service.client().get("/api/v1/models/").status_code == 401
    assert AuditEvent.objects.filter(action="service_token.revoked").exists()


def test_a_bad_service_name_is_refused():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="lowercase"):
        call_command("create_service_token", "Bad Name!")
