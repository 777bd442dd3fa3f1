"""The notice: the outcome, how it was made, the reasons in words with the person's values,
what would change an unfavourable outcome, the data, the ground, how to appeal, a contact.
A reviewer's override shows the reviewer's reason, never the model's; nothing hidden leaks:
protected attributes, reviewer names, other people's data, the model's numbers."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from appeals import notice, services
from audit.services import checkpoint_sign
from models_registry.models import MLModel, ModelVersion
from reviews import services as queue
from reviews.presentation import PUBLIC_REASONS
from tests.appeals.conftest import DENY, claim_appeal, file, ingest, review_all
from tests.fixtures import api

pytestmark = pytest.mark.django_db


def notice_of(decision) -> dict:
    access = services.reference_ensure(decision=decision, actor="test")
    decision.refresh_from_db()
    return notice.notice_for(decision, access)


def test_a_model_alone_decision_says_so_and_gives_its_top_factors(denied):
    text = notice_of(denied)
    assert (text["status"], text["outcome"], text["favourable"]) == ("final", "deny", False)
    assert text["how_decided"]["kind"] == "model"
    assert text["how_decided"]["automated"] and not text["how_decided"]["reviewed_by_a_person"]
    reasons = text["reasons"]
    assert reasons["source"] == "model" and 1 <= len(reasons["factors"]) <= 3
    # The factors against approval, with the person's own values, largest first.
    contributions = {c["feature"]: c["contribution"] for c in denied.explanation["contributions"]}
    assert all(contributions[f["feature"]] < 0 for f in reasons["factors"])
    income = next(f for f in reasons["factors"] if f["feature"] == "debt")
    assert income["value"] == "55"


def test_the_notice_of_an_overridden_decision_gives_the_reviewers_reason_not_the_models(
    overridden,
):
    text = notice_of(overridden)
    assert (text["outcome"], text["how_decided"]["kind"]) == ("deny", "person_changed")
    assert text["reasons"] == {
        "source": "reviewer",
        "text": "Your bank statements show a second loan that was not declared.",
        "factors": [],
    }
    # The model approved: its reasons, and its counterfactual, are for an outcome it no
    # longer has.
    assert text["what_would_change"] == []
    dumped = json.dumps(text, default=str)
    assert "contribution" not in dumped and "weighed most" not in dumped


def test_without_words_for_the_person_the_reason_codes_public_wording(
    tiny_model, service, erin, bob
):
    review_all(tiny_model, erin)
    decision = ingest(service, 9)
    task = queue.task_claim_next(reviewer=bob)
    queue.review_submit(
        task_id=task.pk,
        reviewer=bob,
        verdict="override",
        outcome="deny",
        reason_code="policy_exception",
        rationale="Policy 4.2 applies here.",
    )
    text = notice_of(decision)
    assert text["reasons"]["text"] == PUBLIC_REASONS["policy_exception"]
    assert "4.2" not in json.dumps(text, default=str)  # the rationale is for colleagues


def test_a_confirmed_decision_gives_the_models_reasons_and_says_a_person_confirmed(
    tiny_model, service, erin, bob
):
    review_all(tiny_model, erin)
    decision = ingest(service, 10, **DENY)
    task = queue.task_claim_next(reviewer=bob)
    queue.review_submit(task_id=task.pk, reviewer=bob, verdict="agree")
    text = notice_of(decision)
    assert text["how_decided"]["kind"] == "person_confirmed"
    assert text["reasons"]["source"] == "model" and text["reasons"]["factors"]
    assert text["what_would_change"]


def test_a_pending_decision_has_no_outcome_nor_reasons_yet(pending):
    text = notice_of(pending)
    assert (text["outcome"], text["how_decided"]["kind"], text["reasons"]["source"]) == (
        None,
        "pending",
        "none",
    )
    assert text["appeal"]["can_appeal"] is False
    assert text["appeal"]["come_back"] == pending.tasks.get().due_at


def test_what_would_change_it_is_flagged_outside_the_training_data(denied):
    counterfactual = denied.explanation["counterfactual"]
    assert counterfactual and counterfactual["feature"] in ("income", "debt")
    changes = notice_of(denied)["what_would_change"]
    assert changes and not any(c["outside_training_data"] for c in changes)
    first = changes[0]
    assert first["text"].startswith(f"If your {counterfactual['feature']} had been ")
    # The version says what it was trained on: the first change lies beyond it.
    halfway = (counterfactual["to"] + counterfactual["from"]) / 2
    ranges = {counterfactual["feature"]: sorted([counterfactual["from"], halfway])}
    ModelVersion.objects.filter(pk=denied.model_version_id).update(training_ranges=ranges)
    denied.model_version.refresh_from_db()
    flagged = notice_of(denied)["what_would_change"][0]
    assert flagged["outside_training_data"] is True and " to " in flagged["training_data"]


def test_only_what_the_person_can_change_is_suggested(denied):
    explanation = dict(denied.explanation)
    explanation["counterfactual"] = {"feature": "years", "from": 5, "to": 40, "outcome": "approve"}
    type(denied).objects.filter(pk=denied.pk).update(explanation=explanation)
    assert notice_of(denied)["what_would_change"] == []  # years is not actionable


def test_the_ground_contact_data_and_appeal_deadline(denied, tiny_model):
    MLModel.objects.filter(pk=tiny_model.pk).update(
        notice_ground="Article 6(1)(b) GDPR: the loan contract you applied for.",
        contact="credit-decisions@example.org",
    )
    denied.model.refresh_from_db()
    text = notice_of(denied)
    assert text["ground"].startswith("Article 6(1)(b)")
    assert text["contact"] == "credit-decisions@example.org"
    assert [row["name"] for row in text["data_used"]] == tiny_model.feature_names
    income = text["data_used"][0]
    assert (income["value"], income["description"]) == ("10", "Income, $1000s")
    assert text["appeal"]["can_appeal"] and text["appeal"]["until"] > denied.finalized_at


def test_after_an_appeal_the_notice_shows_its_progress_and_reasons(denied, carol):
    appeal = file(denied)
    assert notice_of(denied)["appeal"]["filed"]["status"] == "submitted"
    claim_appeal(carol)
    services.appeal_resolve(
        appeal_id=appeal.pk,
        senior=carol,
        result="overturned",
        outcome="approve",
        reasons="Your income was higher.",
    )
    text = notice_of(denied)
    assert (text["outcome"], text["how_decided"]["kind"]) == ("approve", "appeal")
    expected = {"source": "appeal", "text": "Your income was higher.", "factors": []}
    assert text["reasons"] == expected
    filed = text["appeal"]["filed"]
    assert (filed["result"], filed["outcome_before"], filed["outcome_after"]) == (
        "overturned",
        "deny",
        "approve",
    )
    assert "carol" not in json.dumps(text, default=str)


# --- nothing hidden leaks ---------------------------------------------------------------------


FORBIDDEN = re.compile(
    r"\b(race|sex|white|female|alice|bob|carol|log[_ -]?odds|probabilit\w*|contribution\w*|"
    r"rationale|second mortgage|s-4444|app-04444)\b",
    re.IGNORECASE,
)


def test_nothing_hidden_reaches_the_person(overridden, tiny_model, service, carol):
    # Someone else's decision, with their own data, in the same model.
    ingest(service, 4444, income=333.0)
    issued = services.access_code_issue(decision=overridden, actor=service.user)
    file(overridden, contact_email="p@example.org")
    claim_appeal(carol)
    checkpoint_sign()
    client = Client()
    credentials = {"reference": issued.reference, "access_code": issued.code}
    client.post("/my-decision/sign-in/", credentials)
    pages = [client.get(url).content.decode() for url in ("/my-decision/", "/my-decision/appeal/")]
    pages.append(client.get("/my-decision/receipt/").content.decode())
    by_api = api(service.user).get(f"/api/v1/decisions/{overridden.pk}/notice/")
    pages.append(json.dumps(by_api.json()))
    for page in pages:
        visible = re.sub(r'"canonical": (null|"[^"]*(\\\\.[^"]*)*")', "", page)
        found = FORBIDDEN.findall(visible)
        assert found == [], found
        assert not re.search(r"(?<![0-9a-f])333(?![0-9a-f])", visible)  # their income


# --- the API -----------------------------------------------------------------------------------


def test_the_notice_api_is_for_the_models_services_and_staff(
    denied, service, other_service, dave, carol, alice, frank
):
    url = f"/api/v1/decisions/{denied.pk}/notice/"
    for user in (service.user, dave, carol):
        assert api(user).get(url).status_code == 200
    assert api(other_service.user).get(url).status_code == 404
    assert api(alice).get(url).status_code == 403
    assert api(frank).get(url).status_code == 403
    assert api().get(url).status_code in (401, 403)


def test_an_appeal_that_restores_the_models_outcome_gives_the_appeals_reasons(overridden, carol):
    appeal = file(overridden)
    claim_appeal(carol)
    services.appeal_resolve(
        appeal_id=appeal.pk,
        senior=carol,
        result="overturned",
        outcome="approve",  # what the model had said
        reasons="The second loan was repaid before you applied.",
    )
    text = notice_of(overridden)
    assert text["outcome"] == overridden.model_outcome == "approve"
    assert text["reasons"]["source"] == "appeal" and text["what_would_change"] == []
    assert "second loan was repaid" in text["reasons"]["text"]
