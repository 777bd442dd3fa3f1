"""The owner's activity page and the routing policy's what-if, and the auditors' decision
pages: finding a decision, its timeline in words, the case page one click away."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from audit.models import AuditEvent, Checkpoint
from models_registry import services as registry
from models_registry.models import RoutingPolicy
from models_registry.selectors import current_policy
from reviews import routing
from reviews.models import Decision
from reviews.services import decisions_ingest, review_submit, task_claim_next
from reviews.whatif import policy_what_if
from tests.fixtures import item, make_user

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sent(tiny_model, service, erin, alice):
    """Twelve decisions, incomes 20 to 240; audits at 25 %; one reviewed and overridden."""
    registry.policy_update(
        model=tiny_model, changes={"random_audit_rate": 25.0}, actor=erin, note="test"
    )
    groups = [{"race": "black", "sex": "female"}, {"race": "white", "sex": "male"}]
    items = [item(n, features={"income": 20.0 * n}, groups=groups[n % 2]) for n in range(1, 13)]
    decisions = [r.decision for r in decisions_ingest(items=items, actor=service.user)]
    task = task_claim_next(reviewer=alice)
    if task is not None:
        other = "deny" if task.decision.model_outcome == "approve" else "approve"
        review_submit(task_id=task.pk, reviewer=alice, verdict="override", outcome=other,
                      reason_code="model_error", rationale="Checked.")  # fmt: skip
    return decisions


FORM = {"confidence_threshold": "0", "high_stakes": "[]", "random_audit_rate": "25",
        "active_learning_budget": "0", "active_learning_max_margin": "0.2",
        "reviewers_required": "1", "sla_hours": "48", "last": "100"}  # fmt: skip


# --- what if --------------------------------------------------------------------------------


def test_the_what_if_counts_what_each_policy_would_route_by_reason(sent, tiny_model):
    rule = {"name": "big-income", "when": {"field": "income", "op": "ge", "value": 200}}
    current = current_policy(tiny_model)
    draft = RoutingPolicy(**{**current.as_dict(), "high_stakes": [rule], "random_audit_rate": 0})
    result = policy_what_if(model=tiny_model, draft=draft, last=100)
    audits = sum(
        routing.audit_draw("tiny", d.external_id) < 0.25 for d in sent
    )  # the same draw the intake made
    reasons = {row["reason"]: row for row in result["reasons"]}
    assert result["n"] == 12
    assert reasons["random_audit"]["current"] == audits and reasons["random_audit"]["draft"] == 0
    assert reasons["high_stakes"]["draft"] == 3 and reasons["high_stakes"]["current"] == 0
    assert result["routed"]["current"] == audits and result["routed"]["draft"] == 3
    assert result["groups"] == []  # not asked: by group is for auditors
    by_group = policy_what_if(model=tiny_model, draft=draft, last=100, by_group=True)["groups"]
    race = next(t for t in by_group if t["attribute"] == "race")
    assert sum(row["n"] for row in race["rows"]) == 12
    assert sum(row["draft"] for row in race["rows"]) == 3
    assert not AuditEvent.objects.filter(action="policy.updated", payload__contains="big").exists()


def test_the_owner_previews_a_draft_on_the_policy_page_and_nothing_is_saved(sent, erin, dave):
    rule = [{"name": "big", "when": {"field": "income", "op": "ge", "value": 200}}]
    body = {**FORM, "high_stakes": json.dumps(rule)}
    response = logged_in(erin).post("/models/tiny/policy/what-if/", body)
    page = response.content.decode()
    assert response.status_code == 200 and 'id="what-if"' in page
    assert "Over the latest <strong>12</strong> decisions" in page
    assert re.search(r"High stakes</th><td class=\"num\">0</td><td class=\"num\">3</td>", page)
    assert "By race" not in page  # owners see no group breakdown
    assert 'id="save-policy"' in page  # the owner may save it from here
    assert RoutingPolicy.objects.count() == 2  # the fixture's change only
    auditor_page = logged_in(dave).post("/models/tiny/policy/what-if/", body).content.decode()
    assert "By race (auditors only)" in auditor_page and 'id="save-policy"' not in auditor_page


def test_a_bad_draft_is_shown_on_the_form_and_not_tried(sent, erin):
    rule = [{"name": "big", "when": {"field": "colour", "op": "eq", "value": 1}}]
    response = logged_in(erin).post(
        "/models/tiny/policy/what-if/", {**FORM, "high_stakes": json.dumps(rule)}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "must be outcome, confidence or a feature" in page and 'id="what-if"' not in page


def test_only_the_owner_and_auditors_try_drafts_and_read_activity(sent, alice, carol):
    mallory = make_user("mallory", "model_owner")
    for user in (mallory, alice, carol):
        client = logged_in(user)
        assert client.post("/models/tiny/policy/what-if/", FORM).status_code in (403, 404)
        assert client.get("/models/tiny/activity/").status_code in (403, 404)


# --- the activity page ------------------------------------------------------------------------


def test_the_activity_page_counts_volume_routing_overrides_and_the_queue(sent, erin):
    page = logged_in(erin).get("/models/tiny/activity/").content.decode()
    routed = sum(d.routed for d in sent)
    volume = re.search(r'id="volume".*?</dl>', page, re.S).group(0)
    assert "<dd>12 since" in volume and f"<dd>{routed} (" in volume
    overrides = re.search(r'id="overrides".*?</dl>', page, re.S).group(0)
    assert "<dd>1</dd>" in overrides and "100% override rate" in overrides
    queue = re.search(r'id="queue".*?</dl>', page, re.S).group(0)
    assert f"<dd>{routed - 1}</dd>" in queue  # waiting: all routed but the one reviewed
    assert 'href="/oversight/models/tiny/"' in page and 'href="/models/tiny/learning/"' in page
    assert logged_in(erin).get("/models/tiny/activity/", {"days": "x"}).status_code == 400


# --- auditors: find, timeline, case page --------------------------------------------------------


def test_an_auditor_finds_a_decision_by_id_external_id_or_subject(sent, dave):
    client = logged_in(dave)
    decision = sent[3]
    for query in (str(decision.pk), decision.external_id, decision.subject_ref):
        response = client.get("/audit/decisions/", {"q": query})
        assert response.url == f"/audit/decisions/{decision.pk}/", query
    Decision.objects.filter(pk=sent[4].pk).update(subject_ref=decision.subject_ref)
    several = client.get("/audit/decisions/", {"q": decision.subject_ref})
    assert several.status_code == 200 and "2 decisions match" in several.content.decode()
    missing = client.get("/audit/decisions/", {"q": "nobody"})
    assert missing.status_code == 404 and "No decision has" in missing.content.decode()
    assert 'action="/audit/decisions/"' in client.get("/audit/").content.decode()
    assert (
        logged_in(make_user("rita", "reviewer")).get("/audit/decisions/", {"q": "1"}).status_code
        == 403
    )


def test_the_decision_page_tells_what_happened_in_words_with_the_proof_one_click_away(sent, dave):
    from audit.services import checkpoint_sign

    checkpoint_sign()
    reviewed = Decision.objects.filter(finalized_by="reviewer").first()
    client = logged_in(dave)
    page = client.get(f"/audit/decisions/{reviewed.pk}/").content.decode()
    timeline = re.search(r'<ol class="timeline" id="timeline">.*?</ol>', page, re.S).group(0)
    assert "Received from the service svc-scorer: the model (version 1) said" in timeline
    assert "alice took the first review" in timeline
    assert "alice answered the first review:" in timeline and "overriding the model" in timeline
    assert "reason: the model got this case wrong" in timeline
    assert "Final outcome" in timeline and "The model&#x27;s answer was overturned." in timeline
    assert "<details>" in timeline and "in the signed tree" in timeline
    assert "{&quot;action&quot;:&quot;decision.ingested&quot;" in timeline  # as logged
    (task,) = reviewed.tasks.all()
    assert f'href="/review/tasks/{task.pk}/"' in page
    case = client.get(f"/review/tasks/{task.pk}/")
    assert case.status_code == 200
    assert 'href="/review/"' not in re.search(
        r'<p class="crumbs">.*?</p>', case.content.decode()
    ).group(0)


def test_an_auditor_signs_a_checkpoint_now(sent, dave):
    before = Checkpoint.objects.count()
    response = logged_in(dave).post("/audit/checkpoint/", follow=True)
    assert "Signed a checkpoint over" in response.content.decode()
    assert Checkpoint.objects.count() == before + 1
    assert AuditEvent.objects.filter(action="checkpoint.requested", actor="user:dave").exists()
    again = logged_in(dave).post("/audit/checkpoint/", follow=True).content.decode()
    assert "Signed a checkpoint over" in again  # the request itself is a new event to cover
    assert logged_in(make_user("rita", "reviewer")).post("/audit/checkpoint/").status_code == 403


def test_a_bad_event_filter_is_an_error_beside_its_field_and_lists_nothing(sent, dave):
    client = logged_in(dave)
    response = client.get("/audit/events/", {"actor": "carol", "since": "yesterday"})
    page = response.content.decode()
    assert response.status_code == 400
    assert re.search(
        r'<input[^>]*name="since"[^>]*aria-describedby="id_since_helptext id_since_error"', page
    )
    assert 'id="id_since_error"' in page and 'id="id_since_helptext"' in page
    assert "<tbody>" not in page.split('id="event-filters"')[1]  # no rows
    fine = client.get("/audit/events/", {"actor": "alice", "since": "2020-01-01"})
    assert fine.status_code == 200 and "user:alice" in fine.content.decode()
    window = client.get("/audit/events/", {"since": "2026-02-01", "until": "2026-01-01"})
    assert window.status_code == 400 and "must be after since" in window.content.decode()


@pytest.mark.django_db(transaction=True)  # the export runs at the commit, as in `make run`
def test_the_exports_page_says_what_happened_and_shows_filters_in_words(sent, dave):
    client = logged_in(dave)
    response = client.post("/audit/exports/", {"format": "csv", "model": "tiny",
                                               "groups": "race=black"}, follow=True)  # fmt: skip
    page = response.content.decode()
    assert re.search(r"Export \d+ is ready: 6 rows\. Download it below\.", page)
    assert "model tiny · race = black" in page and "{" not in page.split('id="exports"')[1]
