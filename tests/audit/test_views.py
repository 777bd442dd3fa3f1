"""The auditor pages: "verify now" runs the verification and shows its result."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent, ChainVerification
from tests.audit.test_chain import append

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_verify_now_verifies_the_chain_and_the_page_shows_the_result(
    dave, django_capture_on_commit_callbacks
):
    append(3)
    client = logged_in(dave)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/audit/verify/")
    assert response.status_code == 302
    verification = ChainVerification.objects.get()
    assert (verification.status, verification.ok) == ("done", True)
    assert verification.requested_by == "user:dave" and verification.events_checked == 4
    assert AuditEvent.objects.filter(action="audit.verification_requested").exists()
    page = client.get("/audit/").content.decode()
    assert "intact" in page and "OK: 4 events, chain intact" in page


def test_only_auditors_may_verify_now(alice):
    assert logged_in(alice).post("/audit/verify/").status_code == 403
    assert not ChainVerification.objects.exists()
