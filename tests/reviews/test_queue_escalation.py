"""Escalation and adjudication: a senior's task is never overruled, never opened in vain."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import ApplicationError
from models_registry import services as registry
from reviews.models import Decision, GoldLabel, Review, ReviewTask
from reviews.services import decisions_ingest
from tests.fixtures import api, item
from tests.reviews.test_queue import CLAIM, events, routed, submit

pytestmark = pytest.mark.django_db


def escalate(user, task_id: int, note: str = "Looks like fraud."):
    return api(user).post(f"/api/v1/review-tasks/{task_id}/escalate/", {"note": note}, "json")


def test_it_leaves_an_escalated_two_reviewer_case_to_the_senior(
    tiny_model, service, erin, alice, bob, carol
):
    (decision,) = routed(tiny_model, service, erin, reviewers_required=2)
    first, second = api(alice).post(CLAIM).json(), api(bob).post(CLAIM).json()
    assert escalate(alice, first["id"]).status_code == 201
    adjudication = api(carol).post(CLAIM).json()
    assert adjudication["kind"] == "adjudication"
    response = submit(bob, second["id"], verdict="agree")
    assert response.status_code == 201 and response.json()["decision_status"] == "pending_review"
    decision.refresh_from_db()
    assert decision.status == "pending_review" and not decision.final_outcome
    assert ReviewTask.objects.get(pk=adjudication["id"]).state == "claimed"  # not cancelled
    assert not events("decision.finalized")
    response = submit(carol, adjudication["id"], verdict="agree")
    assert response.status_code == 201, response.json()
    decision.refresh_from_db()
    assert (decision.finalized_by, decision.finalized_by_user) == ("adjudicator", carol)


def test_it_does_not_finalize_on_a_late_answer_while_the_adjudication_is_still_open(
    tiny_model, service, erin, alice, bob
):
    (decision,) = routed(tiny_model, service, erin, reviewers_required=2)
    first, second = api(alice).post(CLAIM).json(), api(bob).post(CLAIM).json()
    escalate(bob, second["id"])  # the second opinion escalates; the initial reviewer answers
    submit(alice, first["id"], verdict="agree")
    decision.refresh_from_db()
    assert decision.status == "pending_review"
    assert ReviewTask.objects.get(kind="adjudication").state == "open"


def test_both_reviewers_escalating_share_one_adjudication_with_both_notes(
    tiny_model, service, erin, alice, bob, carol
):
    (decision,) = routed(tiny_model, service, erin, reviewers_required=2)
    first, second = api(alice).post(CLAIM).json(), api(bob).post(CLAIM).json()
    one = escalate(alice, first["id"], note="Income looks inflated.").json()
    two = escalate(bob, second["id"], note="Missing pay slips.").json()
    assert one["id"] == two["id"]
    (adjudication,) = ReviewTask.objects.filter(decision=decision, kind="adjudication")
    assert (
        "Income looks inflated." in adjudication.note and "Missing pay slips." in adjudication.note
    )
    assert [e["new_task"] for e in events("task.escalated")] == [adjudication.pk] * 2
    assert api(carol).post(CLAIM).json()["id"] == adjudication.pk


def test_escalating_a_gold_copy_answers_as_an_ordinary_escalation_and_opens_a_gold_adjudication(
    tiny_model, service, erin, alice, carol
):
    """Nothing in the escalation's answer tells the reviewer the task was a known-answer
    check: like any escalation it names a new adjudication, which a senior is served as an
    ordinary one; their answer is compared with the known answer and the item stays final."""
    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    url = f"/api/v1/decisions/{decision.pk}/gold/"
    assert api(erin).post(url, {"outcome": "approve"}, format="json").status_code == 201
    task_id = api(alice).post(CLAIM).json()["id"]
    response = escalate(alice, task_id, "Unsure about the history.")
    assert response.status_code == 201
    task = ReviewTask.objects.get(pk=task_id)
    assert (task.state, task.note) == ("cancelled", "Unsure about the history.")
    (adjudication,) = ReviewTask.objects.filter(kind="adjudication")
    assert response.json()["id"] == adjudication.pk and response.json()["kind"] == "adjudication"
    assert adjudication.is_gold and adjudication.senior_only
    assert "Unsure about the history." in adjudication.note
    (escalated,) = events("task.escalated")
    assert escalated["gold"] is True and escalated["note"] == "Unsure about the history."
    assert escalated["task"] == task_id and escalated["new_task"] == adjudication.pk

    served = api(carol).post(CLAIM).json()
    assert served["id"] == adjudication.pk and served["kind"] == "adjudication"
    response = submit(carol, adjudication.pk, verdict="agree")
    assert response.status_code == 201, response.json()
    decision.refresh_from_db()
    assert decision.status == "final" and decision.finalized_by != "adjudicator"
    (review,) = Review.objects.filter(task=adjudication)
    assert review.is_gold and review.gold_correct is not None
    assert not events("decision.finalized")


def test_an_ordinary_escalation_is_audited_as_not_gold(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    new_task = escalate(alice, task_id).json()["id"]
    (escalated,) = events("task.escalated")
    assert escalated["gold"] is False and escalated["new_task"] == new_task


def test_it_refuses_to_escalate_a_task_on_a_decision_already_final(
    tiny_model, service, erin, alice
):
    (decision,) = routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    # Settled meanwhile by another path (say, the other reviewer, an appeal).
    Decision.objects.filter(pk=decision.pk).update(
        status="final", final_outcome="approve", finalized_by="reviewer",
        finalized_at=timezone.now(),
    )  # fmt: skip
    response = escalate(alice, task_id)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "already_final" and "already final" in error["message"]
    assert not ReviewTask.objects.filter(kind="adjudication").exists()
    assert ReviewTask.objects.get(pk=task_id).state == "claimed"
    assert not AuditEvent.objects.filter(action="task.escalated").exists()


def test_it_never_opens_an_adjudication_on_a_final_decision(tiny_model, service):
    from reviews.services.common import open_adjudication as _open_adjudication

    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    assert decision.status == "final"
    with pytest.raises(ApplicationError, match="already final"):
        _open_adjudication(decision, timezone.now(), note="x", priority=90)
    assert not ReviewTask.objects.exists()


def test_marking_a_gold_item_twice_at_once_is_a_409_not_a_500(tiny_model, service, erin):
    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    url = f"/api/v1/decisions/{decision.pk}/gold/"
    assert api(erin).post(url, {"outcome": "approve"}, format="json").status_code == 201
    # The other request's label lands between this one's check and its insert.
    nothing = mock.Mock(**{"exists.return_value": False})
    with mock.patch.object(GoldLabel.objects, "filter", return_value=nothing):
        response = api(erin).post(url, {"outcome": "deny"}, format="json")
    assert response.status_code == 409
    assert "already a gold item" in response.json()["error"]["message"]
    assert GoldLabel.objects.get().outcome == "approve"
    assert ReviewTask.objects.count() == 1
    assert [json.loads(e.payload)["outcome"] for e in AuditEvent.objects.filter(
        action="gold.marked")] == ["approve"]  # fmt: skip


def test_an_escalation_that_opens_an_adjudication_logs_its_opening_once(
    tiny_model, service, erin, alice, bob
):
    (decision,) = routed(tiny_model, service, erin, reviewers_required=2)
    first, second = api(alice).post(CLAIM).json(), api(bob).post(CLAIM).json()
    opened = escalate(alice, first["id"]).json()
    assert escalate(bob, second["id"]).json()["id"] == opened["id"]  # the same adjudication
    (event,) = AuditEvent.objects.filter(action="task.opened")
    assert event.actor == "user:alice" and event.object_id == str(decision.pk)
    assert json.loads(event.payload) == {
        "task": opened["id"], "kind": "adjudication", "reason": "escalation"
    }  # fmt: skip


def test_the_senior_on_a_gold_adjudication_reads_the_copies_answers(
    tiny_model, service, erin, alice, bob, carol
):
    """As on an ordinary adjudication, the senior reads the answers given on the case: the
    copies' (not the item's own, which an ordinary case of this kind would not have)."""
    registry.policy_update(
        model=tiny_model, changes={"reviewers_required": 2}, actor=erin, note="test"
    )
    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    url = f"/api/v1/decisions/{decision.pk}/gold/"
    response = api(erin).post(url, {"outcome": "approve", "copies": 2}, format="json")
    assert response.status_code == 201, response.json()
    first, second = api(bob).post(CLAIM).json(), api(alice).post(CLAIM).json()
    answer = {"verdict": "override", "rationale": "Pay slips look forged."}
    answer |= {"outcome": "deny", "reason_code": settings.REVIEW_REASON_CODES[0]}
    assert submit(bob, first["id"], **answer).status_code == 201
    adjudication = escalate(alice, second["id"], "Unsure.").json()
    assert api(carol).post(CLAIM).json()["id"] == adjudication["id"]
    client = Client()
    client.force_login(carol)
    page = client.get(f"/review/tasks/{adjudication['id']}/")
    assert page.status_code == 200
    assert "Pay slips look forged." in page.content.decode()
