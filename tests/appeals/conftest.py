"""Decisions to appeal: approved and denied by the model alone, and one a reviewer overrode."""

from __future__ import annotations

import pytest

from appeals import services
from appeals.models import Appeal
from models_registry import services as registry
from reviews import services as queue
from reviews.models import Decision
from tests.fixtures import item

DENY = {"income": 10.0, "debt": 55.0, "history": "poor"}
GROUNDS = "My income went up last spring; the figure you used is two years old."


def ingest(service, n: int, **features) -> Decision:
    overrides = {"features": features} if features else {}
    return queue.decisions_ingest(items=[item(n, **overrides)], actor=service.user)[0].decision


@pytest.fixture
def approved(tiny_model, service) -> Decision:
    decision = ingest(service, 1)
    assert (decision.status, decision.final_outcome) == ("final", "approve")
    return decision


@pytest.fixture
def denied(tiny_model, service) -> Decision:
    decision = ingest(service, 2, **DENY)
    assert (decision.status, decision.final_outcome, decision.finalized_by) == (
        "final",
        "deny",
        "model",
    )
    return decision


def review_all(model, erin) -> None:
    registry.policy_update(model=model, changes={"review_all": True}, actor=erin, note="test")


@pytest.fixture
def pending(tiny_model, service, erin) -> Decision:
    review_all(tiny_model, erin)
    return ingest(service, 3)


@pytest.fixture
def overridden(tiny_model, service, erin, alice) -> Decision:
    """The model approved; Alice denied, with words for the person."""
    review_all(tiny_model, erin)
    decision = ingest(service, 4)
    task = queue.task_claim_next(reviewer=alice)
    queue.review_submit(
        task_id=task.pk,
        reviewer=alice,
        verdict="override",
        outcome="deny",
        reason_code="missing_information",
        rationale="Payslips show a second mortgage the model never saw.",
        explanation_for_person="Your bank statements show a second loan that was not declared.",
    )
    decision.refresh_from_db()
    assert (decision.final_outcome, decision.finalized_by) == ("deny", "reviewer")
    return decision


def file(decision: Decision, **fields) -> Appeal:
    fields = {"grounds": GROUNDS, "via": "portal", "actor": "person:test", **fields}
    return services.appeal_file(decision=decision, **fields)


def claim_appeal(senior):
    task = queue.task_claim_next(reviewer=senior, kind="appeal")
    assert task is not None
    return task
