"""Real threads on PostgreSQL: an appeal is never given to anyone who took part in the
decision, however the claims interleave (reviews.selectors.eligible_tasks at the claim, the
database's one task per reviewer per decision when two claims race)."""

from __future__ import annotations

from collections import Counter

import pytest

from appeals.models import Appeal
from audit.verification import verify_log
from reviews import selectors
from reviews import services as queue
from reviews.models import Decision, Review, ReviewTask
from tests import threads
from tests.appeals.conftest import file, review_all
from tests.fixtures import item, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 24
SENIORS = 4


def ingest_all(service) -> list[Decision]:
    items = [item(k) for k in range(ROUNDS)]
    return [r.decision for r in queue.decisions_ingest(items=items, actor=service.user)]


def reviewed_by_seniors(model, service, erin, seniors) -> list[Decision]:
    """ROUNDS final decisions, decision k reviewed by seniors[k % SENIORS]."""
    review_all(model, erin)
    decisions = ingest_all(service)
    for k in range(ROUNDS):
        senior = seniors[k % SENIORS]
        task = queue.task_claim_next(reviewer=senior, kind="initial")
        assert task.decision_id == decisions[k].pk  # served in the order they arrived
        queue.review_submit(task_id=task.pk, reviewer=senior, verdict="agree")
    for decision in decisions:
        decision.refresh_from_db()
        assert decision.status == "final"
    return decisions


def claim_all(senior) -> list[int]:
    held = []
    while (task := queue.task_claim_next(reviewer=senior, kind="appeal")) is not None:
        held.append(task.pk)
    return held


def test_seniors_claiming_at_once_never_get_an_appeal_they_took_part_in(tiny_model, service, erin):
    seniors = [make_user(f"senior{i}", "senior_reviewer") for i in range(SENIORS)]
    decisions = reviewed_by_seniors(tiny_model, service, erin, seniors)
    for decision in decisions:
        file(decision)

    # Every senior in two tabs at once, each taking all it may.
    results, errors = threads.at_once(claim_all, [(s,) for s in seniors for _tab in range(2)])

    assert errors == []
    claimed = [task_id for held in results for task_id in held]
    assert len(claimed) == len(set(claimed)) == ROUNDS  # each appeal to exactly one senior
    for task in ReviewTask.objects.filter(kind="appeal"):
        reviewer = Review.objects.get(decision_id=task.decision_id).reviewer
        assert task.state == "claimed" and task.assignee_id != reviewer.pk
        assert not selectors.took_part(task.decision_id, task.assignee, besides=task.pk)
    assert Appeal.objects.filter(status="in_review").count() == ROUNDS
    assert verify_log().ok


def test_one_senior_taking_a_gold_copy_and_the_appeal_of_a_decision_at_once_gets_one(
    tiny_model, service, erin, alice
):
    """Two tabs of one senior: one takes known-answer copies, the other appeals, of the same
    decisions, at the same moments. Holding a copy is taking part; the database lets only
    one of the two claims on a decision through."""
    review_all(tiny_model, erin)
    decisions = ingest_all(service)
    while (task := queue.task_claim_next(reviewer=alice)) is not None:
        queue.review_submit(task_id=task.pk, reviewer=alice, verdict="agree")
    for decision in decisions:
        decision.refresh_from_db()
        queue.gold_mark(decision=decision, outcome="approve", actor=erin)
        file(decision)
    senior = make_user("senior", "senior_reviewer")

    def take(kind: str):
        def step(_decision) -> None:
            queue.task_claim_next(reviewer=senior, kind=kind)

        return step

    refused, errors = threads.in_lockstep([take("initial"), take("appeal")], decisions, Exception)

    assert errors == [] and refused == []
    held = ReviewTask.objects.filter(assignee=senior)
    per_decision = Counter(held.values_list("decision_id", flat=True))
    assert per_decision and max(per_decision.values()) == 1
    assert held.count() == ROUNDS  # every decision gave them one task, never two
    kinds = Counter(held.values_list("kind", flat=True))
    assert kinds["initial"] + kinds["appeal"] == ROUNDS
    assert verify_log().ok
