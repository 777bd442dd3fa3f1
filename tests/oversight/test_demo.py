from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from audit.verification import verify_log
from models_registry.models import MLModel, ModelVersion
from reviews.models import Decision, ProtectedAttribute, ReviewTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(capsys):
    call_command("load_demo")
    return capsys.readouterr().out


def test_the_demo_trains_a_real_model_and_ingests_real_applications(demo):
    model = MLModel.objects.get(name="mortgage-approval")
    champion = model.versions.get(status=ModelVersion.Status.CHAMPION)
    assert champion.explainer == "linear_exact"
    assert champion.metrics["overall"]["n"] == Decision.objects.count()
    assert champion.metrics["overall"]["auc"] > 0.75
    assert set(champion.metrics["by_group"]["race"]) == {"black", "hispanic", "white"}
    decisions = Decision.objects.filter(model=model)
    assert 300 <= decisions.count() <= 500
    assert decisions.filter(routed=True).exists() and decisions.filter(routed=False).exists()
    # One initial task per routed decision (the simulated reviewers' escalations add
    # adjudications: oversight.demo_reviews).
    initial = ReviewTask.objects.filter(decision__routed=True, kind="initial")
    assert initial.count() == decisions.filter(routed=True).count()
    # Protected attributes arrive, kept apart from the features.
    assert not any(name in model.feature_names for name in ("race", "sex"))
    assert ProtectedAttribute.objects.filter(name="race").count() == decisions.count()


def test_the_demo_decisions_arrive_through_the_api_with_the_services_token(demo):
    from audit.models import AuditEvent
    from core.models import ServiceToken

    token = ServiceToken.objects.get(name="mortgage-scorer")
    assert token.last_used_at is not None  # authenticated by the API's token check
    actors = set(
        AuditEvent.objects.filter(action="decision.ingested").values_list("actor", flat=True)
    )
    assert actors == {"service:svc-mortgage-scorer"}


def test_the_demo_prints_the_url_and_every_role_login(demo):
    assert "http://127.0.0.1:8000/" in demo
    for username in ("alice", "bob", "carol", "dave", "erin"):
        assert username in demo
    assert "ovs_" in demo  # the service token, printed once


def test_loading_the_demo_twice_changes_nothing(demo, capsys):
    counts = (Decision.objects.count(), ReviewTask.objects.count(), ModelVersion.objects.count())
    call_command("load_demo")
    out = capsys.readouterr().out
    assert "(0 new)" in out and "ovs_" not in out
    assert counts == (
        Decision.objects.count(),
        ReviewTask.objects.count(),
        ModelVersion.objects.count(),
    )


def test_the_chain_verifies_after_the_demo_and_a_reviewer_can_log_in(demo, capsys):
    assert verify_log().ok
    call_command("audit_verify")
    assert "chain intact" in capsys.readouterr().out
    client = Client()
    assert client.login(username="alice", password="alice-reviews")
    assert client.get("/review/").status_code == 200
