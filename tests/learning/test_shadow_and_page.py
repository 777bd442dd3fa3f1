"""Shadow scores of new decisions by the candidate, and the owner's learning page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from learning.models import ShadowScore
from learning.services import on_ingested, shadow_scores_write
from models_registry import services as registry
from tests.fixtures import make_user
from tests.learning.common import ingest, rule_artifact, settle

pytestmark = pytest.mark.django_db


def test_new_decisions_are_scored_by_the_candidate_after_commit(
    tiny_model, service, erin, alice, django_capture_on_commit_callbacks
):
    candidate = registry.version_upload(
        model=tiny_model, artifact=rule_artifact(poor_denied=True), actor=erin
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        decisions = ingest(tiny_model, service, erin, n=4)
    assert not ShadowScore.objects.exists()  # nothing in the ingest's own transaction
    for callback in callbacks:
        callback()  # eager: the shadow task runs now
    scores = ShadowScore.objects.filter(version=candidate)
    assert scores.count() == 4
    assert {s.decision_id for s in scores} == {d.pk for d in decisions}
    for score in scores:
        decision = next(d for d in decisions if d.pk == score.decision_id)
        assert score.agrees_with_model == (score.outcome == decision.model_outcome)
    assert shadow_scores_write(version_id=candidate.pk, decision_ids=[decisions[0].pk]) == 0

    settle(decisions[0], "deny", alice)
    client = Client()
    client.force_login(erin)
    page = client.get("/models/tiny/learning/").content.decode()
    assert f"Candidate version {candidate.number} scoring new decisions" in page


def test_without_a_candidate_the_ingest_hands_over_nothing_and_asks_once(
    tiny_model, service, erin, django_capture_on_commit_callbacks
):
    decisions = ingest(tiny_model, service, erin, n=3)
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks() as callbacks,
    ):
        on_ingested(decisions)
    assert len(queries) == 1 and callbacks == []


@pytest.fixture
def page_client():
    def client_for(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return client_for


def test_the_owner_sees_labels_deliveries_runs_and_charts_with_their_tables(
    tiny_model, service, erin, alice, page_client
):
    for decision in ingest(tiny_model, service, erin, n=3):
        settle(decision, "approve", alice)
    response = page_client(erin).get("/models/tiny/learning/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("<svg") >= 2 and 'role="img"' in page
    for table in ("labels-table", "outbox-table", "dead-table", "deliveries-table", "runs-table"):
        assert f'id="{table}"' in page
    assert "Retrain now" in page and 'id="webhook-form"' in page
    assert "3 labels (3 review)" in page


def test_auditors_read_the_page_without_its_buttons_and_others_may_not(
    tiny_model, dave, alice, page_client, client
):
    page = page_client(dave).get("/models/tiny/learning/")
    assert page.status_code == 200
    assert (
        "Retrain now" not in page.content.decode() and "webhook-form" not in page.content.decode()
    )
    assert page_client(alice).get("/models/tiny/learning/").status_code == 403
    mallory = make_user("mallory", "model_owner")
    assert page_client(mallory).get("/models/tiny/learning/").status_code == 403
    assert page_client(mallory).post("/models/tiny/learning/retrain/").status_code == 403
    assert page_client(dave).post("/models/tiny/learning/retrain/").status_code == 403
    assert client.get("/models/tiny/learning/").status_code == 302  # to the login page


def test_the_owner_sets_the_webhook_on_the_page_and_a_bad_url_is_shown(
    tiny_model, erin, page_client
):
    client = page_client(erin)
    bad = client.post("/models/tiny/learning/webhook/", {"url": "ftp://x", "secret": "x" * 20})
    assert bad.status_code == 400 and "must be an absolute" in bad.content.decode()
    good = client.post(
        "/models/tiny/learning/webhook/",
        {"url": "https://models.example.org/hook", "secret": "x" * 20},
        follow=True,
    )
    assert "will not be shown again" in good.content.decode()
    assert "https://models.example.org/hook" in good.content.decode()
    removed = client.post("/models/tiny/learning/webhook/", {"remove": "1"}, follow=True)
    assert "The webhook is removed." in removed.content.decode()
