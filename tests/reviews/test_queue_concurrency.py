"""Real threads on PostgreSQL: answers on one decision's tasks given at the same moment.

Every service that changes a decision and its tasks locks the decision first, then the tasks;
with any other order two answers on sibling tasks can each hold a task the other needs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from audit.verification import verify_log
from core.errors import ApplicationError
from models_registry import services as registry
from reviews import services
from reviews.models import Decision, GoldLabel, Review, ReviewTask
from reviews.services import decisions_ingest
from tests import threads
from tests.fixtures import item, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 30


def two_reviewer_decisions(model, service, erin, n: int = ROUNDS) -> list[Decision]:
    changes = {"review_all": True, "reviewers_required": 2}
    registry.policy_update(model=model, changes=changes, actor=erin, note="test")
    return [
        r.decision for r in decisions_ingest(items=[item(k) for k in range(n)], actor=service.user)
    ]


def claim_all(reviewer, kind: str) -> dict[int, int]:
    """Decision id → the task of that kind the reviewer now holds."""
    held = {}
    while (task := services.task_claim_next(reviewer=reviewer, kind=kind)) is not None:
        held[task.decision_id] = task.pk
    return held


def other(outcome: str) -> str:
    return "deny" if outcome == "approve" else "approve"


def agree(_decision: Decision) -> dict:
    return {"verdict": "agree"}


def override(decision: Decision) -> dict:
    return {"verdict": "override", "outcome": other(decision.model_outcome),
            "reason_code": "model_error", "rationale": "The debt is understated."}  # fmt: skip


def in_lockstep(workers: list[tuple], decisions: list[Decision]) -> tuple[list, list]:
    """Each worker (reviewer, tasks by decision, answer) submits its task of each decision at
    the same moment as the others. Returns (refusals, any other exceptions)."""

    def submitter(reviewer, tasks: dict[int, int], answer: Callable[[Decision], dict]):
        def submit(decision: Decision) -> None:
            data = answer(decision)
            services.review_submit(task_id=tasks[decision.pk], reviewer=reviewer, **data)

        return submit

    return threads.in_lockstep([submitter(*w) for w in workers], decisions, ApplicationError)


def test_it_settles_two_sibling_answers_given_at_the_same_moment(tiny_model, service, erin):
    decisions = two_reviewer_decisions(tiny_model, service, erin)
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    firsts, seconds = claim_all(alice, "initial"), claim_all(bob, "second_opinion")
    assert len(firsts) == len(seconds) == ROUNDS
    disagree = {d.pk for d in decisions[::3]}

    def bobs_answer(decision: Decision) -> dict:
        return override(decision) if decision.pk in disagree else agree(decision)

    refused, errors = in_lockstep([(alice, firsts, agree), (bob, seconds, bobs_answer)], decisions)

    assert errors == [] and refused == []
    assert Review.objects.count() == 2 * ROUNDS
    for decision in decisions:
        decision.refresh_from_db()
        adjudications = ReviewTask.objects.filter(decision=decision, kind="adjudication")
        if decision.pk in disagree:
            assert decision.status == "pending_review"
            assert [t.state for t in adjudications] == ["open"]
        else:
            assert (decision.status, decision.finalized_by) == ("final", "reviewer")
            assert decision.final_outcome == decision.model_outcome
            assert not adjudications.exists()
    assert verify_log().ok


def test_it_settles_an_adjudication_and_a_late_sibling_answer_given_at_once(
    tiny_model, service, erin
):
    decisions = two_reviewer_decisions(tiny_model, service, erin)
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    carol = make_user("carol", "senior_reviewer")
    for task_id in claim_all(alice, "initial").values():
        services.task_escalate(task_id=task_id, reviewer=alice, note="Not sure.")
    seconds, adjudications = claim_all(bob, "second_opinion"), claim_all(carol, "adjudication")
    assert len(seconds) == len(adjudications) == ROUNDS

    refused, errors = in_lockstep(
        [(carol, adjudications, override), (bob, seconds, agree)], decisions
    )

    assert errors == []
    # Bob is refused exactly when the adjudication settled the decision first.
    assert {exc.code for exc in refused} <= {"lease_lost"}
    bobs_reviews = Review.objects.filter(reviewer=bob).count()
    assert bobs_reviews + len(refused) == ROUNDS
    assert ReviewTask.objects.filter(kind="second_opinion", state="cancelled").count() == len(
        refused
    )
    for decision in decisions:
        decision.refresh_from_db()
        assert (decision.status, decision.finalized_by) == ("final", "adjudicator")
        assert decision.final_outcome == other(decision.model_outcome)  # the senior's word
    assert verify_log().ok


def test_it_marks_a_gold_item_once_when_two_owners_ask_at_once(tiny_model, service, erin):
    decisions = [r.decision for r in decisions_ingest(items=[item(k) for k in range(10)],
                                                       actor=service.user)]  # fmt: skip

    def marker(outcome: str) -> Callable[[Decision], object]:
        return lambda decision: services.gold_mark(decision=decision, outcome=outcome, actor=erin)

    steps = [marker("approve"), marker("deny")]
    refused, errors = threads.in_lockstep(steps, decisions, ApplicationError)
    assert errors == []
    assert len(refused) == len(decisions)
    assert all("already a gold item" in exc.message for exc in refused)
    assert GoldLabel.objects.count() == len(decisions) == ReviewTask.objects.count()
