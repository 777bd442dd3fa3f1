"""Deciding an appeal: only the senior holding its task, who took no part in the decision;
upheld or overturned with reasons; an overturn sets the final outcome (finalized_by "appeal");
both audited, settled for the apps that listen, shown to the person. Nothing else decides."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from appeals import services
from appeals.models import Appeal
from audit.models import AuditEvent
from audit.verification import verify_log
from core.errors import ApplicationError
from models_registry import services as registry
from reviews import hooks, selectors
from reviews import services as queue
from reviews.models import Decision, ReviewTask
from tests.appeals.conftest import claim_appeal, file, ingest
from tests.fixtures import api, make_user

pytestmark = pytest.mark.django_db
REASONS = "Your payslips show the income you gave; the model used an old figure."


@pytest.fixture
def settlements():
    seen: list[hooks.Settlement] = []
    hooks.on_settled(seen.append)
    yield seen
    hooks._settled.remove(seen.append)


def resolve(appeal, senior, result="overturned", outcome="approve", reasons=REASONS):
    return services.appeal_resolve(
        appeal_id=appeal.pk, senior=senior, result=result, outcome=outcome, reasons=reasons
    )


def test_an_overturn_sets_the_final_outcome_and_is_audited(denied, carol, settlements):
    appeal = file(denied)
    task = claim_appeal(carol)
    resolve(appeal, carol)
    denied.refresh_from_db()
    appeal.refresh_from_db()
    task.refresh_from_db()
    assert (denied.status, denied.final_outcome, denied.finalized_by) == (
        "final",
        "approve",
        "appeal",
    )
    assert denied.finalized_by_user == carol and denied.model_outcome == "deny"
    assert (appeal.status, appeal.outcome_before, appeal.outcome_after, appeal.reasons) == (
        "overturned",
        "deny",
        "approve",
        REASONS,
    )
    assert (task.state, appeal.decided_by) == ("done", carol)
    decided = AuditEvent.objects.get(action="appeal.decided")
    finalized = AuditEvent.objects.get(action="decision.finalized")
    assert decided.actor == finalized.actor == "user:carol"
    assert json.loads(decided.payload)["result"] == "overturned"
    assert json.loads(finalized.payload) == {
        "appeal": appeal.pk,
        "final_outcome": "approve",
        "finalized_by": "appeal",
        "model_outcome": "deny",
        "overridden": True,
        "previous_finalized_by": "model",
        "previous_outcome": "deny",
    }
    assert finalized.object_id == decided.object_id == str(denied.pk)
    (settled,) = settlements
    assert (settled.source, settled.outcome, settled.appeal_result, settled.appeal_id) == (
        "appeal",
        "approve",
        "overturned",
        appeal.pk,
    )
    assert settled.by == carol and settled.decision.pk == denied.pk
    assert verify_log().ok


def test_upholding_keeps_the_outcome_and_is_audited(denied, carol, settlements):
    appeal = file(denied)
    claim_appeal(carol)
    resolve(appeal, carol, result="upheld", outcome=None)
    denied.refresh_from_db()
    appeal.refresh_from_db()
    assert (denied.final_outcome, denied.finalized_by) == ("deny", "model")
    assert (appeal.status, appeal.outcome_after) == ("upheld", "deny")
    assert not AuditEvent.objects.filter(action="decision.finalized").exists()
    assert json.loads(AuditEvent.objects.get(action="appeal.decided").payload)["result"] == (
        "upheld"
    )
    assert [(s.source, s.appeal_result, s.outcome) for s in settlements] == [
        ("appeal", "upheld", "deny")
    ]


def test_reasons_for_the_person_are_required(denied, carol):
    appeal = file(denied)
    claim_appeal(carol)
    for reasons in ("", "   "):
        with pytest.raises(ApplicationError) as refused:
            resolve(appeal, carol, reasons=reasons)
        assert set(refused.value.fields) == {"reasons"}


@pytest.mark.parametrize(
    ("result", "outcome", "field"),
    [
        ("overturned", None, "outcome"),
        ("overturned", "deny", "outcome"),  # the outcome appealed: that is upholding
        ("overturned", "maybe", "outcome"),
        ("upheld", "approve", "outcome"),
        ("dismissed", None, "result"),
    ],
)
def test_it_refuses_a_result_that_does_not_add_up(denied, carol, result, outcome, field):
    appeal = file(denied)
    claim_appeal(carol)
    with pytest.raises(ApplicationError) as refused:
        resolve(appeal, carol, result=result, outcome=outcome)
    assert field in refused.value.fields
    denied.refresh_from_db()
    assert denied.final_outcome == "deny"


def test_only_the_holder_of_its_task_decides(denied, carol):
    appeal = file(denied)
    dan = make_user("dan", "senior_reviewer")
    with pytest.raises(ApplicationError) as nobody_holds:
        resolve(appeal, carol)
    assert nobody_holds.value.code == "lease_lost"
    claim_appeal(carol)
    with pytest.raises(ApplicationError) as not_dan:
        resolve(appeal, dan)
    assert not_dan.value.code == "lease_lost"
    appeal.refresh_from_db()
    assert appeal.status == "in_review"


def test_a_lease_that_ran_out_decides_nothing(denied, carol):
    appeal = file(denied)
    task = claim_appeal(carol)
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now())
    with pytest.raises(ApplicationError) as refused:
        resolve(appeal, carol)
    assert refused.value.code == "lease_lost"


def test_nothing_decides_an_appeal_on_its_own(denied, carol):
    """Overdue, its lease run out and swept: still open, waiting for a person."""
    appeal = file(denied)
    task = claim_appeal(carol)
    past = timezone.now() - timedelta(days=30)
    Appeal.objects.filter(pk=appeal.pk).update(due_at=past)
    ReviewTask.objects.filter(pk=task.pk).update(due_at=past, lease_expires_at=past)
    queue.leases_expire()
    appeal.refresh_from_db()
    task.refresh_from_db()
    assert (appeal.status, task.state, appeal.decided_at) == ("in_review", "open", None)
    assert not AuditEvent.objects.filter(action="appeal.decided").exists()


def test_an_appeal_task_cannot_be_answered_as_a_review(denied, carol):
    file(denied)
    task = claim_appeal(carol)
    with pytest.raises(ApplicationError) as refused:
        queue.review_submit(
            task_id=task.pk,
            reviewer=carol,
            verdict="override",
            outcome="approve",
            reason_code="other",
            rationale="Because.",
        )
    assert refused.value.code == "appeal_task"
    with pytest.raises(ApplicationError) as escalated:
        queue.task_escalate(task_id=task.pk, reviewer=carol, note="Not mine.")
    assert escalated.value.code == "appeal_task"
    denied.refresh_from_db()
    task.refresh_from_db()
    assert (denied.final_outcome, task.state) == ("deny", "claimed")
    response = api(carol).post(
        f"/api/v1/review-tasks/{task.pk}/decision/", {"verdict": "agree"}, format="json"
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "appeal_task"


def adjudicated(model, service, erin, alice, bob, senior) -> Decision:
    """Alice and Bob disagree; the senior adjudicates: final by the adjudicator."""
    changes = {"review_all": True, "reviewers_required": 2}
    registry.policy_update(model=model, changes=changes, actor=erin, note="test")
    decision = ingest(service, 7)
    first = queue.task_claim_next(reviewer=alice, kind="initial")
    second = queue.task_claim_next(reviewer=bob, kind="second_opinion")
    queue.review_submit(task_id=first.pk, reviewer=alice, verdict="agree")
    queue.review_submit(
        task_id=second.pk,
        reviewer=bob,
        verdict="override",
        outcome="deny",
        reason_code="model_error",
        rationale="Debt is understated.",
    )
    adjudication = queue.task_claim_next(reviewer=senior, kind="adjudication")
    queue.review_submit(task_id=adjudication.pk, reviewer=senior, verdict="agree")
    decision.refresh_from_db()
    assert (decision.status, decision.finalized_by) == ("final", "adjudicator")
    return decision


def test_no_one_who_took_part_is_given_the_appeal(tiny_model, service, erin, alice, bob, carol):
    """The adjudicator, and a senior who answered a gold copy of the decision, are never
    given its appeal; a senior who had no part in it is."""
    decision = adjudicated(tiny_model, service, erin, alice, bob, carol)
    queue.gold_mark(decision=decision, outcome="approve", actor=erin)
    dan, eve = make_user("dan", "senior_reviewer"), make_user("eve", "senior_reviewer")
    gold = queue.task_claim_next(reviewer=dan)
    assert gold.is_gold and gold.decision_id == decision.pk
    queue.review_submit(task_id=gold.pk, reviewer=dan, verdict="agree")
    appeal = file(decision)
    for participant in (alice, bob, carol, dan):
        assert queue.task_claim_next(reviewer=participant, kind="appeal") is None
        assert selectors.took_part(decision.pk, participant)
    assert claim_appeal(eve).pk == appeal.task_id
    assert not selectors.took_part(decision.pk, eve, besides=appeal.task_id)


def test_the_result_is_refused_to_a_holder_who_took_part(denied, carol):
    """Defence in depth: were the claim ever to hand it to a participant, the result is
    refused where it is made."""
    appeal = file(denied)
    claim_appeal(carol)
    Decision.objects.filter(pk=denied.pk).update(finalized_by_user=carol)
    with pytest.raises(ApplicationError) as refused:
        resolve(appeal, carol)
    assert refused.value.status == 403
    appeal.refresh_from_db()
    assert appeal.status == "in_review"


def test_the_senior_decides_through_the_api(denied, carol, dave):
    appeal = file(denied)
    claim_appeal(carol)
    url = f"/api/v1/appeals/{appeal.pk}/decision/"
    by_dave = api(dave).post(url, {"result": "upheld", "reasons": "x"}, format="json")
    assert by_dave.status_code == 403
    bad = api(carol).post(url, {"result": "overturned", "reasons": ""}, format="json")
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"reasons"}
    response = api(carol).post(
        url, {"result": "overturned", "outcome": "approve", "reasons": REASONS}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["result"], body["outcome_after"], body["decided_by"]) == (
        "overturned",
        "overturned",
        "approve",
        "carol",
    )
    again = api(carol).post(url, {"result": "upheld", "reasons": REASONS}, format="json")
    assert again.status_code == 409


def test_the_senior_decides_on_the_appeal_page(denied, carol):
    appeal = file(denied, corrections={"income": 180})
    client = Client()
    client.force_login(carol)
    response = client.post("/appeals/next/")
    assert response["Location"] == f"/appeals/tasks/{appeal.task_id}/"
    response = client.get(response["Location"], follow=True)
    page = response.content.decode()
    assert 'id="decide-form"' in page and "The person's grounds" in page
    assert 'id="corrected-score"' in page and "it decides nothing" in page
    # Through the queue too: its case page sends an appeal task here.
    assert client.get(f"/review/tasks/{appeal.task_id}/")["Location"] == (
        f"/appeals/tasks/{appeal.task_id}/"
    )
    body = {"result": "overturned", "outcome": "approve"}
    missing = client.post(f"/appeals/{appeal.pk}/decide/", body)
    assert missing.status_code == 400 and "reasons" in missing.content.decode()
    done = client.post(
        f"/appeals/{appeal.pk}/decide/",
        {"result": "overturned", "outcome": "approve", "reasons": REASONS},
    )
    assert done.status_code == 302
    denied.refresh_from_db()
    assert (denied.final_outcome, denied.finalized_by) == ("approve", "appeal")


def test_the_result_reaches_the_person_by_the_outbox(
    denied, carol, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    appeal = file(denied, contact_email="p@example.org")
    claim_appeal(carol)
    with django_capture_on_commit_callbacks(execute=True):
        resolve(appeal, carol)
    sent = mail.outbox[-1]
    assert sent.to == ["p@example.org"] and REASONS in sent.body and "approve" in sent.body
    assert "carol" not in sent.body.lower()
