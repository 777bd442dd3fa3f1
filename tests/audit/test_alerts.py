"""Alerts: raised once per kind and scope while open, acknowledged and resolved by an auditor
with a note, every step audited."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import Alert, AuditEvent
from audit.services import alert_acknowledge, alert_raise, alert_resolve
from core.errors import ApplicationError
from tests.fixtures import PASSWORD, api

pytestmark = pytest.mark.django_db


def test_it_keeps_one_open_alert_per_kind_and_scope():
    first = alert_raise(kind="gap", scope="model:m", message="gap of 0.2")
    again = alert_raise(kind="gap", scope="model:m", message="gap of 0.3")
    other = alert_raise(kind="gap", scope="model:n", message="gap of 0.2")
    assert again.pk == first.pk and other.pk != first.pk
    assert AuditEvent.objects.filter(action="alert.raised").count() == 2


def test_an_auditor_acknowledges_then_resolves_with_a_note_and_each_step_is_audited(dave):
    alert = alert_raise(kind="gap", scope="model:m", message="gap")
    alert_acknowledge(alert_id=alert.pk, actor=dave, note="looking")
    with pytest.raises(ApplicationError, match="already acknowledged"):
        alert_acknowledge(alert_id=alert.pk, actor=dave)
    with pytest.raises(ApplicationError) as empty:
        alert_resolve(alert_id=alert.pk, actor=dave, note="  ")
    assert empty.value.fields == {"note": ["say what was found or done (1 to 2000 characters)"]}
    alert_resolve(alert_id=alert.pk, actor=dave, note="retrained; gap closed")
    alert.refresh_from_db()
    assert (alert.state, alert.resolved_by, alert.acknowledged_by) == ("resolved", dave, dave)
    assert "dave acknowledged: looking" in alert.notes
    assert "dave resolved: retrained; gap closed" in alert.notes
    actions = list(
        AuditEvent.objects.filter(object_type="alert", object_id=str(alert.pk)).values_list(
            "action", "actor"
        )
    )
    assert actions == [
        ("alert.raised", "system"),
        ("alert.acknowledged", "user:dave"),
        ("alert.resolved", "user:dave"),
    ]
    with pytest.raises(ApplicationError, match="was resolved"):
        alert_resolve(alert_id=alert.pk, actor=dave, note="again")
    # Once resolved, the same condition raises a new alert.
    assert alert_raise(kind="gap", scope="model:m", message="gap").pk != alert.pk


def test_the_api_lists_acknowledges_and_resolves_for_auditors_only(dave, carol):
    alert = alert_raise(kind="gap", scope="model:m", message="gap")
    assert api(carol).get("/api/v1/alerts/").status_code == 403
    listed = api(dave).get("/api/v1/alerts/?state=open").json()["results"]
    assert [a["id"] for a in listed] == [alert.pk]
    acked = api(dave).post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")
    assert acked.json()["state"] == "acknowledged"
    refused = api(dave).post(f"/api/v1/alerts/{alert.pk}/resolve/", {}, format="json")
    assert refused.status_code == 400 and "note" in refused.json()["error"]["fields"]
    done = (
        api(dave)
        .post(f"/api/v1/alerts/{alert.pk}/resolve/", {"note": "fixed"}, format="json")
        .json()
    )
    assert (done["state"], done["resolved_by"]) == ("resolved", "dave")
    assert api(dave).get("/api/v1/alerts/?state=open").json()["results"] == []
    missing = api(dave).post("/api/v1/alerts/999/resolve/", {"note": "x"}, format="json")
    assert missing.status_code == 404


def test_the_audit_page_offers_both_actions(dave):
    alert = alert_raise(kind="gap", scope="model:m", message="a gap")
    client = Client()
    client.login(username="dave", password=PASSWORD)
    page = client.get("/audit/").content.decode()
    assert f"/audit/alerts/{alert.pk}/acknowledge/" in page
    assert f"/audit/alerts/{alert.pk}/resolve/" in page
    client.post(f"/audit/alerts/{alert.pk}/resolve/", {"note": "done"})
    assert Alert.objects.get().state == "resolved"
    assert "a gap" not in client.get("/audit/").content.decode()
