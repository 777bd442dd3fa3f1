"""Blind review holds everywhere: whoever holds an unanswered blind task on a decision sees
nothing of the model's answer to it, whichever task, page or endpoint they look through."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from reviews.models import ReviewTask
from tests.fixtures import api
from tests.reviews.test_queue import CLAIM, routed, submit

pytestmark = pytest.mark.django_db

MODEL_KEYS = ("model_outcome", "confidence", "probabilities", "margin", "explanation")
RULES = [
    {"name": "answered_either_way", "when": {"field": "outcome", "op": "in",
                                             "value": ["approve", "deny"]}},
    {"name": "any_confidence", "when": {"all": [{"field": "confidence", "op": "ge", "value": 0},
                                                {"field": "income", "op": "gt", "value": 0}]}},
    {"name": "big_income", "when": {"field": "income", "op": "gt", "value": 100}},
]  # fmt: skip


@pytest.fixture
def blind(tiny_model, service, erin, carol):
    """Carol (senior) holds the blind initial task of a two-reviewer decision."""
    (decision,) = routed(
        tiny_model, service, erin, blind_review=True, reviewers_required=2, high_stakes=RULES
    )
    held = api(carol).post(CLAIM).json()
    sibling = ReviewTask.objects.exclude(pk=held["id"]).get(decision=decision)
    return decision, held, sibling


def assert_hidden(data: dict, decision) -> None:
    for key in MODEL_KEYS:
        assert key not in data, key
    assert data["model_hidden"] is True
    assert set(data["routing"]) == {"reasons", "high_stakes_rules"}
    assert f"{decision.confidence:.4f}"[:6] not in json.dumps(data)


def test_the_decision_api_hides_the_model_from_a_senior_holding_a_blind_task(blind, carol):
    decision, _held, _sibling = blind
    data = api(carol).get(f"/api/v1/decisions/{decision.pk}/").json()
    assert_hidden(data, decision)
    assert "final_outcome" not in data


def test_the_decision_list_hides_the_model_of_every_decision_awaiting_blind_review(
    blind, carol, dave, service, erin, tiny_model
):
    """Carol may yet be given the others' blind tasks: peeking first would defeat blind review.
    An auditor, who reviews nothing, sees them all."""
    decision, _held, _sibling = blind
    others = routed(tiny_model, service, erin, n=2, start=10, blind_review=True)
    rows = {row["id"]: row for row in api(carol).get("/api/v1/decisions/").json()["results"]}
    for hidden in (decision, *others):
        assert_hidden(rows[hidden.pk], hidden)
    audited = {row["id"]: row for row in api(dave).get("/api/v1/decisions/").json()["results"]}
    for other in others:
        assert audited[other.pk]["model_outcome"] == other.model_outcome


def test_a_decision_that_is_not_blind_shows_the_model_to_seniors(carol, service, erin, tiny_model):
    (decision,) = routed(tiny_model, service, erin, start=30)
    row = api(carol).get(f"/api/v1/decisions/{decision.pk}/").json()
    assert row["model_outcome"] == decision.model_outcome and "model_hidden" not in row


def test_a_senior_cannot_peek_before_claiming_a_blind_task(carol, service, erin, tiny_model):
    (decision,) = routed(tiny_model, service, erin, start=40, blind_review=True)
    task = ReviewTask.objects.get(decision=decision)
    assert_hidden(api(carol).get(f"/api/v1/decisions/{decision.pk}/").json(), decision)
    assert_hidden(api(carol).get(f"/api/v1/review-tasks/{task.pk}/").json()["decision"], decision)
    client = Client()
    client.force_login(carol)
    page = client.get(f"/review/tasks/{task.pk}/").content.decode()
    assert 'id="model-answer"' not in page


def test_releasing_a_blind_task_does_not_open_a_peek(carol, service, erin, tiny_model):
    (decision,) = routed(tiny_model, service, erin, start=50, blind_review=True)
    held = api(carol).post(CLAIM).json()
    assert api(carol).post(f"/api/v1/review-tasks/{held['id']}/release/").status_code == 200
    assert_hidden(api(carol).get(f"/api/v1/decisions/{decision.pk}/").json(), decision)


def test_high_stakes_is_not_given_as_a_reason_when_only_rules_on_the_answer_fired(
    carol, service, erin, tiny_model
):
    rules = [{"name": "denials", "when": {"field": "outcome", "op": "in",
                                          "value": ["approve", "deny"]}}]  # fmt: skip
    (decision,) = routed(
        tiny_model, service, erin, start=60, blind_review=True, review_all=False, high_stakes=rules
    )
    assert "high_stakes" in decision.reasons
    held = api(carol).post(CLAIM).json()
    assert held["decision"]["routing"] == {"reasons": [], "high_stakes_rules": []}


def test_the_decision_list_finds_hidden_decisions_in_one_query(
    blind, carol, service, erin, tiny_model
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api(carol).get("/api/v1/decisions/").status_code == 200
        return len(captured)

    few = queries()
    routed(tiny_model, service, erin, n=4, start=20, blind_review=True)
    for _ in range(4):
        api(carol).post(CLAIM)  # carol holds blind tasks on more and more decisions
    assert ReviewTask.objects.filter(assignee=carol, state="claimed").count() == 5
    assert queries() == few


def test_the_sibling_task_hides_the_model_from_the_holder_in_the_api(blind, carol):
    decision, _held, sibling = blind
    data = api(carol).get(f"/api/v1/review-tasks/{sibling.pk}/").json()["decision"]
    assert_hidden(data, decision)


def test_the_sibling_case_page_hides_the_model_from_the_holder(blind, carol, dave):
    _decision, _held, sibling = blind
    client = Client()
    client.force_login(carol)
    page = client.get(f"/review/tasks/{sibling.pk}/").content.decode()
    assert 'id="model-hidden"' in page and 'id="model-answer"' not in page
    client.force_login(dave)  # an auditor holds nothing: sees it all
    assert 'id="model-answer"' in client.get(f"/review/tasks/{sibling.pk}/").content.decode()


def test_it_reveals_the_model_once_the_holder_has_answered(blind, carol):
    decision, held, sibling = blind
    assert submit(carol, held["id"], outcome="deny", rationale="High debt.").status_code == 201
    data = api(carol).get(f"/api/v1/decisions/{decision.pk}/").json()
    assert data["model_outcome"] == decision.model_outcome
    assert api(carol).get(f"/api/v1/review-tasks/{sibling.pk}/").json()["decision"][
        "model_outcome"] == decision.model_outcome  # fmt: skip


def test_blind_routing_names_no_rule_on_the_models_outcome_or_confidence(blind, carol):
    decision, held, _sibling = blind
    fired = {rule["name"] for rule in decision.routing["conditions"][2]["rules"] if rule["fired"]}
    assert fired == {"answered_either_way", "any_confidence", "big_income"}
    assert held["decision"]["routing"]["high_stakes_rules"] == ["big_income"]
    client = Client()
    client.force_login(carol)
    page = client.get(f"/review/tasks/{held['id']}/").content.decode()
    assert "High stakes: big_income (income is above 100)." in page
    assert "answered_either_way" not in page and "any_confidence" not in page
