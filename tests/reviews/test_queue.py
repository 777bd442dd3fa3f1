from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import ApplicationError
from models_registry import services as registry
from reviews.models import Decision, Review, ReviewTask
from reviews.services import decisions_ingest
from tests.fixtures import api, item, make_user

pytestmark = pytest.mark.django_db

CLAIM = "/api/v1/review-tasks/claim/"


def routed(model, service, erin, n: int = 1, start: int = 1, **policy) -> list[Decision]:
    """n decisions that all wait for review (review_all on, plus the given policy)."""
    registry.policy_update(
        model=model, changes={"review_all": True, **policy}, actor=erin, note="test"
    )
    results = decisions_ingest(items=[item(i) for i in range(start, start + n)], actor=service.user)
    return [result.decision for result in results]


def submit(user, task_id, **body):
    return api(user).post(f"/api/v1/review-tasks/{task_id}/decision/", body, format="json")


def events(action: str) -> list[dict]:
    return [json.loads(e.payload) for e in AuditEvent.objects.filter(action=action)]


@pytest.fixture
def carl(db):
    return make_user("carl", "senior_reviewer")


# --- claiming --------------------------------------------------------------------------------


def test_claim_gives_highest_priority_then_earliest_due(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin, n=3)
    tasks = list(ReviewTask.objects.order_by("id"))
    now = timezone.now()
    ReviewTask.objects.filter(pk=tasks[0].pk).update(priority=10, due_at=now)
    ReviewTask.objects.filter(pk=tasks[1].pk).update(priority=50, due_at=now + timedelta(hours=5))
    ReviewTask.objects.filter(pk=tasks[2].pk).update(priority=50, due_at=now + timedelta(hours=1))
    order = [api(alice).post(CLAIM).json()["id"] for _ in range(3)]
    assert order == [tasks[2].pk, tasks[1].pk, tasks[0].pk]
    assert api(alice).post(CLAIM).status_code == 204


def test_a_claim_is_a_fifteen_minute_lease_and_is_audited(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    before = timezone.now()
    body = api(alice).post(CLAIM).json()
    task = ReviewTask.objects.get(pk=body["id"])
    assert (task.state, task.assignee, body["kind"]) == ("claimed", alice, "initial")
    assert (
        timedelta(minutes=14) < task.lease_expires_at - before <= timedelta(minutes=15, seconds=5)
    )
    assert body["decision"]["features"]["income"] == 120.0
    assert "groups" not in body["decision"]  # protected attributes never reach reviewers
    (event,) = AuditEvent.objects.filter(action="task.claimed")
    assert event.actor == "user:alice" and event.object_id == str(task.decision_id)


def test_claim_filters_by_model_and_kind(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    assert api(alice).post(CLAIM, {"model": "other"}, format="json").status_code == 204
    assert api(alice).post(CLAIM, {"kind": "adjudication"}, format="json").status_code == 204
    assert (
        api(alice).post(CLAIM, {"model": "tiny", "kind": "initial"}, format="json").status_code
        == 200
    )


def test_an_expired_lease_returns_the_task_to_the_queue(tiny_model, service, erin, alice, bob):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    assert api(bob).post(CLAIM).status_code == 204
    ReviewTask.objects.filter(pk=task_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert api(bob).post(CLAIM).json()["id"] == task_id  # lazily expired on claim
    (expired,) = events("task.expired")
    assert expired["task"] == task_id and expired["reviewer"] == alice.pk


def test_the_periodic_task_expires_leases(tiny_model, service, erin, alice):
    from reviews.tasks import expire_leases

    routed(tiny_model, service, erin, n=2)
    api(alice).post(CLAIM)
    api(alice).post(CLAIM)
    ReviewTask.objects.update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    assert expire_leases.delay().get() == 2
    assert set(ReviewTask.objects.values_list("state", flat=True)) == {"open"}


def test_renewing_extends_the_lease(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    ReviewTask.objects.filter(pk=task_id).update(
        lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    response = api(alice).post(f"/api/v1/review-tasks/{task_id}/renew/")
    assert response.status_code == 200
    assert ReviewTask.objects.get(pk=task_id).lease_expires_at > timezone.now() + timedelta(
        minutes=14
    )
    assert len(events("task.renewed")) == 1


def test_releasing_puts_the_task_back(tiny_model, service, erin, alice, bob):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    assert api(alice).post(f"/api/v1/review-tasks/{task_id}/release/").status_code == 200
    assert ReviewTask.objects.get(pk=task_id).state == "open"
    assert api(bob).post(CLAIM).json()["id"] == task_id
    assert len(events("task.released")) == 1


# --- answering -------------------------------------------------------------------------------


def test_agreeing_makes_the_decision_final_with_who_and_how_long(tiny_model, service, erin, alice):
    (decision,) = routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    ReviewTask.objects.filter(pk=task_id).update(claimed_at=timezone.now() - timedelta(seconds=42))
    response = submit(alice, task_id, verdict="agree")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["agrees_with_model"] is True and body["decision_status"] == "final"
    assert 41 < body["seconds_spent"] < 60
    decision.refresh_from_db()
    assert decision.final_outcome == decision.model_outcome
    assert (decision.finalized_by, decision.finalized_by_user) == ("reviewer", alice)
    assert ReviewTask.objects.get(pk=task_id).state == "done"
    submitted, finalized = events("review.submitted")[0], events("decision.finalized")[0]
    assert submitted["verdict"] == "agree" and finalized["overridden"] is False


def test_overriding_needs_an_outcome_a_reason_code_and_a_rationale(
    tiny_model, service, erin, alice
):
    (decision,) = routed(tiny_model, service, erin)
    other = "deny" if decision.model_outcome == "approve" else "approve"
    task_id = api(alice).post(CLAIM).json()["id"]
    cases = [
        ({"verdict": "override", "reason_code": "model_error", "rationale": "x"}, "outcome"),
        ({"verdict": "override", "outcome": decision.model_outcome, "reason_code": "other",
          "rationale": "x"}, "outcome"),
        ({"verdict": "override", "outcome": other, "reason_code": "gut", "rationale": "x"},
         "reason_code"),
        ({"verdict": "override", "outcome": other, "reason_code": "model_error"}, "rationale"),
        ({"verdict": "override", "outcome": other, "reason_code": "model_error", "rationale": " "},
         "rationale"),
        ({"verdict": "maybe"}, "verdict"),
    ]  # fmt: skip
    for body, field in cases:
        response = submit(alice, task_id, **body)
        assert response.status_code == 400, body
        assert field in response.json()["error"]["fields"], (body, response.json())
    assert not Review.objects.exists()
    good = {"verdict": "override", "outcome": other, "reason_code": "missing_information",
            "rationale": "Income was verified by phone."}  # fmt: skip
    body = submit(alice, task_id, **good).json()
    assert (body["outcome"], body["agrees_with_model"]) == (other, False)
    review = Review.objects.get()
    assert (
        review.rationale == "Income was verified by phone."
        and review.reason_code == "missing_information"
    )
    decision.refresh_from_db()
    assert decision.final_outcome == other
    assert events("decision.finalized")[0]["overridden"] is True


def test_a_submit_after_losing_the_lease_is_a_clear_409(tiny_model, service, erin, alice, bob):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    ReviewTask.objects.filter(pk=task_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = submit(alice, task_id, verdict="agree")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "lease_lost"
    assert "expired" in response.json()["error"]["message"]
    assert api(bob).post(CLAIM).json()["id"] == task_id  # bob reclaims it
    response = submit(alice, task_id, verdict="agree")
    assert response.status_code == 409  # still a clear 409 once the task is someone else's
    assert response.json()["error"]["code"] == "lease_lost"
    assert "held by someone else" in response.json()["error"]["message"]
    assert not Review.objects.exists()


@pytest.mark.parametrize("action", ["decision", "renew", "release", "escalate"])
def test_it_tells_a_reviewer_whose_lease_the_beat_expired_that_it_is_lost(
    action, tiny_model, service, erin, alice
):
    from reviews.tasks import expire_leases

    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    ReviewTask.objects.filter(pk=task_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    expire_leases.delay()  # back in the queue, nobody's
    body = {"verdict": "agree", "note": "Looks odd."}
    response = api(alice).post(f"/api/v1/review-tasks/{task_id}/{action}/", body, format="json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "lease_lost" and "Claim the next task" in error["message"]
    assert ReviewTask.objects.get(pk=task_id).state == "open"


def test_it_does_not_tell_a_non_reviewer_about_a_task(tiny_model, service, erin, alice, dave):
    from reviews import services

    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    with pytest.raises(ApplicationError) as refused:
        services.review_submit(task_id=task_id, reviewer=dave, verdict="agree")
    assert (refused.value.status, refused.value.code) == (404, "not_found")
    assert submit(dave, task_id, verdict="agree").status_code == 403


def test_only_the_lease_holder_may_submit(tiny_model, service, erin, alice, bob, carl):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    for other in (bob, carl):  # a senior may see it, not answer it
        response = submit(other, task_id, verdict="agree")
        assert response.status_code == 409 and response.json()["error"]["code"] == "lease_lost"
        assert "held by someone else" in response.json()["error"]["message"]
    assert submit(alice, task_id, verdict="agree").status_code == 201


def test_the_final_outcome_is_set_once(tiny_model, service, erin, alice):
    (decision,) = routed(tiny_model, service, erin)
    submit(alice, api(alice).post(CLAIM).json()["id"], verdict="agree")
    review = Review.objects.get()
    from reviews.services.answers import _finalize

    with pytest.raises(Exception, match="already final"):
        _finalize(decision, review, "reviewer", timezone.now(), [])


# --- two reviewers and adjudication ------------------------------------------------------------


def test_two_reviewers_who_agree_settle_it(tiny_model, service, erin, alice, bob):
    (decision,) = routed(tiny_model, service, erin, reviewers_required=2)
    first = api(alice).post(CLAIM).json()
    assert api(alice).post(CLAIM).status_code == 204  # never both tasks of one decision
    second = api(bob).post(CLAIM).json()
    assert {first["kind"], second["kind"]} == {"initial", "second_opinion"}
    submit(alice, first["id"], verdict="agree")
    decision.refresh_from_db()
    assert decision.status == "pending_review"  # waits for the second, independent review
    submit(bob, second["id"], verdict="agree")
    decision.refresh_from_db()
    assert (decision.status, decision.finalized_by) == ("final", "reviewer")


def test_disagreement_goes_to_a_senior_who_took_no_part(
    tiny_model, service, erin, alice, bob, carl, carol
):
    (decision,) = routed(tiny_model, service, erin, reviewers_required=2)
    other = "deny" if decision.model_outcome == "approve" else "approve"
    first, second = api(alice).post(CLAIM).json(), api(carl).post(CLAIM).json()  # carl is senior
    submit(alice, first["id"], verdict="agree")
    submit(carl, second["id"], verdict="override", outcome=other, reason_code="model_error",
           rationale="Debt is understated.")  # fmt: skip
    adjudication = ReviewTask.objects.get(kind="adjudication")
    assert adjudication.senior_only and adjudication.state == "open"
    assert "disagree" in adjudication.note
    assert api(bob).post(CLAIM).status_code == 204  # not a senior
    assert api(carl).post(CLAIM).status_code == 204  # senior, but reviewed this decision
    task = api(carol).post(CLAIM).json()
    assert task["id"] == adjudication.pk
    submit(carol, task["id"], verdict="override", outcome=other, reason_code="model_error",
           rationale="Agree with the second reviewer.")  # fmt: skip
    decision.refresh_from_db()
    assert (decision.final_outcome, decision.finalized_by, decision.finalized_by_user) == (
        other, "adjudicator", carol)  # fmt: skip
    assert events("task.opened")[0]["reason"] == "disagreement"


def test_escalation_hands_the_case_to_another_senior(tiny_model, service, erin, alice, carl, carol):
    (decision,) = routed(tiny_model, service, erin)
    task_id = api(carl).post(CLAIM).json()["id"]
    response = api(carl).post(
        f"/api/v1/review-tasks/{task_id}/escalate/", {"note": ""}, format="json"
    )
    assert response.status_code == 400 and "note" in response.json()["error"]["fields"]
    response = api(carl).post(
        f"/api/v1/review-tasks/{task_id}/escalate/", {"note": "Looks like fraud."}, format="json"
    )
    assert response.status_code == 201
    assert ReviewTask.objects.get(pk=task_id).state == "cancelled"
    assert api(alice).post(CLAIM).status_code == 204
    assert api(carl).post(CLAIM).status_code == 204  # the escalator does not adjudicate
    task = api(carol).post(CLAIM).json()
    assert task["kind"] == "adjudication" and "Looks like fraud." in task["note"]
    submit(carol, task["id"], verdict="agree")
    decision.refresh_from_db()
    assert decision.finalized_by == "adjudicator"
    assert events("task.escalated")[0]["note"] == "Looks like fraud."


# --- blind review --------------------------------------------------------------------------------


def test_blind_review_hides_the_models_answer_in_the_api_until_answered(
    tiny_model, service, erin, alice
):
    (decision,) = routed(tiny_model, service, erin, blind_review=True, confidence_threshold=0.999)
    body = api(alice).post(CLAIM).json()
    case = body["decision"]
    assert body["blind"] is True and case["model_hidden"] is True
    for hidden in ("model_outcome", "confidence", "probabilities", "explanation"):
        assert hidden not in case
    assert case["routing"] == {"reasons": ["review_all", "low_confidence"], "high_stakes_rules": []}
    text = json.dumps(body)
    assert str(decision.confidence) not in text
    response = submit(alice, body["id"], verdict="agree")  # agreeing with what you cannot see
    assert response.status_code == 400 and "outcome" in response.json()["error"]["fields"]
    response = submit(alice, body["id"], outcome="deny")
    assert "rationale" in response.json()["error"]["fields"]
    answer = submit(alice, body["id"], outcome="deny", rationale="High debt.").json()
    assert answer["model_hidden"] is True and answer["model_outcome"] == decision.model_outcome
    assert answer["agrees_with_model"] == (decision.model_outcome == "deny")
    after = api(alice).get(f"/api/v1/review-tasks/{body['id']}/").json()["decision"]
    assert after["model_outcome"] == decision.model_outcome  # revealed once answered


def test_blind_review_hides_the_models_answer_on_the_case_page(
    tiny_model, service, erin, alice, dave
):
    (decision,) = routed(tiny_model, service, erin, blind_review=True)
    client = Client()
    client.force_login(alice)
    response = client.post("/review/next/")
    page = client.get(response["Location"]).content.decode()
    assert 'id="model-hidden"' in page and 'id="model-answer"' not in page
    assert f"{decision.confidence:.2f}"[:4] not in page
    assert 'id="blind-form"' in page and 'id="agree"' not in page
    client.force_login(dave)  # an auditor looking on is not the one answering
    assert 'id="model-answer"' in client.get(response["Location"]).content.decode()


# --- known-answer checks ------------------------------------------------------------------------


def test_gold_items_check_reviewers_without_touching_the_decision(
    tiny_model, service, erin, alice, bob
):
    decision = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    assert decision.status == "final"
    other = "deny" if decision.model_outcome == "approve" else "approve"
    url = f"/api/v1/decisions/{decision.pk}/gold/"
    mallory = make_user("mallory", "model_owner")
    assert api(mallory).post(url, {"outcome": other}, format="json").status_code == 404
    response = api(erin).post(url, {"outcome": other, "copies": 2}, format="json")
    assert response.status_code == 201, response.json()
    first, second = api(alice).post(CLAIM).json(), api(bob).post(CLAIM).json()
    assert "gold" not in json.dumps(first)  # served like an ordinary task
    submit(alice, first["id"], verdict="agree")
    submit(bob, second["id"], verdict="override", outcome=other, reason_code="model_error",
           rationale="The history says otherwise.")  # fmt: skip
    decision.refresh_from_db()
    assert decision.final_outcome == decision.model_outcome and decision.finalized_by == "model"
    assert dict(Review.objects.values_list("reviewer__username", "gold_correct")) == {
        "alice": False, "bob": True}  # fmt: skip
    carol = make_user("carol2", "senior_reviewer")
    rows = {row["reviewer"]: row for row in api(carol).get("/api/v1/review-stats/").json()}
    assert (rows["alice"]["gold_accuracy"], rows["bob"]["gold_accuracy"]) == (0.0, 1.0)
    assert rows["alice"]["reviews"] == 0  # gold answers are not counted as reviews


# --- who may do what ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "claim", "stats"),
    [("alice", 204, 403), ("carol", 204, 200), ("dave", 403, 200), ("erin", 403, 403)],
)
def test_the_queue_endpoints_check_the_role(who, claim, stats, alice, carol, dave, erin):
    user = {"alice": alice, "carol": carol, "dave": dave, "erin": erin}[who]
    assert api(user).post(CLAIM).status_code == claim
    assert api(user).get("/api/v1/review-stats/").status_code == stats
    assert api(user).get("/api/v1/review-tasks/").status_code == (200 if claim == 204 else 403)


def test_anonymous_and_services_cannot_use_the_queue(service):
    assert api().post(CLAIM).status_code == 401
    assert service.client().post(CLAIM).status_code == 403


@pytest.mark.parametrize(("path", "allowed"), [("/review/", {"alice", "carol"}),
                                              ("/review/stats/", {"carol", "dave"})])  # fmt: skip
def test_the_pages_check_the_role(path, allowed, alice, carol, dave, erin):
    for name, user in {"alice": alice, "carol": carol, "dave": dave, "erin": erin}.items():
        client = Client()
        client.force_login(user)
        assert client.get(path).status_code == (200 if name in allowed else 403), (name, path)


def test_a_reviewer_cannot_open_someone_elses_case_page(tiny_model, service, erin, alice, bob):
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    client = Client()
    client.force_login(bob)
    assert client.get(f"/review/tasks/{task_id}/").status_code == 404
    response = client.post(f"/review/tasks/{task_id}/decide/", {"verdict": "agree"})
    assert response.status_code == 409 and "not saved" in response.content.decode()
    assert not Review.objects.exists()


def test_the_database_refuses_one_reviewer_two_tasks_of_one_decision(
    tiny_model, service, erin, alice
):
    from django.db import IntegrityError, transaction

    routed(tiny_model, service, erin, reviewers_required=2)
    first, second = ReviewTask.objects.order_by("id")
    ReviewTask.objects.filter(pk=first.pk).update(assignee=alice, state="done")
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewTask.objects.filter(pk=second.pk).update(assignee=alice, state="claimed")


def test_a_settlement_is_announced_in_its_transaction_and_only_then(
    tiny_model, service, erin, alice, monkeypatch
):
    from reviews import hooks

    heard = []
    monkeypatch.setattr(hooks, "_settled", [heard.append])
    routed(tiny_model, service, erin)
    task_id = api(alice).post(CLAIM).json()["id"]
    submit(alice, task_id, verdict="agree")
    (settlement,) = heard
    decision = Decision.objects.get()
    assert (settlement.decision.pk, settlement.outcome, settlement.source, settlement.by) == (
        decision.pk, decision.final_outcome, "review", alice
    )  # fmt: skip
    assert settlement.review.task_id == task_id and settlement.at == decision.finalized_at
