"""The case page: whatever explanation was stored, it renders; a gold item looks ordinary."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from models_registry import services as registry
from reviews.models import Decision, ReviewTask
from reviews.presentation import UNREADABLE
from reviews.services import decisions_ingest
from tests.fixtures import api, item
from tests.reviews.test_queue import CLAIM, routed

pytestmark = pytest.mark.django_db

CONTRIBUTION = {"feature": "income", "value": 120, "contribution": 0.8}
# Explanations a model service could have sent before intake validated them (legacy rows).
MALFORMED = [
    {"contributions": [{"feature": "income"}]},
    {"contributions": "abc"},
    {"contributions": [{"feature": ["income"], "contribution": 1}], "method": ["x"]},
    {"contributions": [{"feature": "income", "contribution": "big"}, None, 7, CONTRIBUTION]},
    {"contributions": [{"feature": "income", "contribution": True}], "towards": {"a": 1}},
    {"contributions": {"income": 0.5}},
    {"counterfactual": {"feature": "income"}},
    {"counterfactual": "abc"},
    {"counterfactual": ["abc"]},
    {"counterfactual": {"feature": "income", "outcome": "deny", "from": 120, "to": {"x": 1},
                        "alternatives": [None, {"feature": "debt"}, "raise the debt"]}},
    {"counterfactual": {"outcome": "deny", "alternatives": "abc"}},
    "a plain sentence",
    ["a", "list"],
    7,
]  # fmt: skip


def case_page(user, task_id: int):
    client = Client()
    client.force_login(user)
    return client.get(f"/review/tasks/{task_id}/")


@pytest.mark.parametrize("explanation", MALFORMED)
def test_it_shows_the_case_page_whatever_explanation_was_stored(
    explanation, tiny_model, service, erin, alice
):
    (decision,) = routed(tiny_model, service, erin)
    Decision.objects.filter(pk=decision.pk).update(explanation=explanation)
    task_id = api(alice).post(CLAIM).json()["id"]
    response = case_page(alice, task_id)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="model-answer"' in page and "The application" in page


def test_it_shows_what_it_can_read_and_says_what_it_could_not(tiny_model, service, erin, alice):
    (decision,) = routed(tiny_model, service, erin)
    explanation = {
        "method": "client",
        "towards": "approve",
        "contributions": [CONTRIBUTION, "Debt is low for this income.", {"feature": "debt"}],
        "counterfactual": {"feature": "income", "outcome": "deny", "from": 120, "to": 40,
                           "alternatives": [{"feature": "debt"}]},
    }  # fmt: skip
    Decision.objects.filter(pk=decision.pk).update(explanation=explanation)
    task_id = api(alice).post(CLAIM).json()["id"]
    page = case_page(alice, task_id).content.decode()
    assert "Income" in page and "0.800" in page  # the readable bar
    assert "Debt is low for this income." in page  # text shown as text
    assert UNREADABLE.format(what="explanation") in page
    assert "would have been deny if income had been 40" in page
    assert UNREADABLE.format(what="counterfactual") in page
    assert "No single change" not in page  # an unreadable counterfactual is not "none"


# --- a gold item looks like an audit sample ---------------------------------------------------


def sections(page: str) -> list[str]:
    return re.findall(r"<h2[^>]*>(.*?)</h2>", page)


def reasons(page: str) -> list[str]:
    listing = re.search(r'<ul class="reasons">(.*?)</ul>', page, re.S).group(1)
    return re.findall(r"<li>(.*?)</li>", listing)


def history(page: str) -> list[str]:
    listing = re.search(r'<ol class="history">(.*?)</ol>', page, re.S).group(1)
    return re.findall(r"</time> ([\w.]+) ", listing)


@pytest.fixture
def gold_and_sample(tiny_model, service, erin, alice, bob):
    """Alice holds a gold copy of an unrouted decision and an ordinary random-audit sample."""
    gold = decisions_ingest(items=[item(1)], actor=service.user)[0].decision
    assert not gold.routed and gold.status == "final"
    registry.policy_update(
        model=tiny_model, changes={"random_audit_rate": 100}, actor=erin, note="test"
    )
    sample = decisions_ingest(items=[item(2)], actor=service.user)[0].decision
    assert sample.reasons == ["random_audit"]
    url = f"/api/v1/decisions/{gold.pk}/gold/"
    assert api(erin).post(url, {"outcome": "deny", "copies": 2}, format="json").status_code == 201
    claimed = [api(alice).post(CLAIM).json()["id"] for _ in range(2)]
    api(bob).post(CLAIM)  # bob takes one task too: the other gold copy or nothing
    tasks = ReviewTask.objects.filter(pk__in=claimed)
    return tasks.get(is_gold=True), tasks.get(is_gold=False)


def test_a_gold_case_page_shows_the_same_sections_as_an_audit_sample(gold_and_sample, alice):
    gold, sample = gold_and_sample
    gold_page = case_page(alice, gold.pk).content.decode()
    sample_page = case_page(alice, sample.pk).content.decode()
    assert sections(gold_page) == sections(sample_page)
    assert "History" in sections(gold_page)
    assert reasons(gold_page) == reasons(sample_page)
    assert reasons(gold_page) == ["Picked at random for audit (whatever the model said)."]
    assert "Escalated or adjudicated" not in gold_page


def test_a_gold_case_history_shows_the_arrival_and_this_task_only(gold_and_sample, alice, bob):
    gold, sample = gold_and_sample
    assert ReviewTask.objects.filter(is_gold=True, assignee=bob).exists()
    assert history(case_page(alice, gold.pk).content.decode()) == [
        "decision.ingested",
        "task.claimed",
    ]
    assert history(case_page(alice, sample.pk).content.decode()) == [
        "decision.ingested",
        "task.claimed",
    ]


def test_a_gold_task_in_the_api_gives_the_audit_sample_reason(gold_and_sample, alice):
    gold, sample = gold_and_sample
    gold_routing = api(alice).get(f"/api/v1/review-tasks/{gold.pk}/").json()["decision"]["routing"]
    sample_routing = (
        api(alice).get(f"/api/v1/review-tasks/{sample.pk}/").json()["decision"]["routing"]
    )
    assert gold_routing["reasons"] == sample_routing["reasons"] == ["random_audit"]
    fired = [c["name"] for c in gold_routing["conditions"] if c["fired"]]
    assert fired == ["random_audit"]
    shapes = [{key: sorted(c) for c in r["conditions"] for key in [c["name"]]}
              for r in (gold_routing, sample_routing)]  # fmt: skip
    assert shapes[0] == shapes[1]  # no draw or rate that would tell them apart
    assert "draw" not in json.dumps(gold_routing) and "draw" not in json.dumps(sample_routing)
