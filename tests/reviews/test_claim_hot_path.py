"""The claim and the answer in few statements (issue 15, part 2): an expired lease is taken
over by the claim itself, the 'involved' rule holds with a long history, and the statements a
claim and an answer make have an upper bound on PostgreSQL (so a regression fails here)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import ApplicationError
from reviews import services
from reviews.models import Decision, ReviewTask
from tests.conftest import ON_POSTGRES
from tests.reviews.test_queue import routed

pytestmark = pytest.mark.django_db


def events(action: str) -> list[tuple[str, dict]]:
    found = AuditEvent.objects.filter(action=action).order_by("id")
    return [(e.actor, json.loads(e.payload)) for e in found]


def expire(task_id: int) -> None:
    ReviewTask.objects.filter(pk=task_id).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


# --- expired leases ------------------------------------------------------------------------


def test_another_reviewer_takes_over_an_expired_lease_and_the_expiry_is_filed(
    tiny_model, service, erin, alice, bob
):
    routed(tiny_model, service, erin)
    task = services.task_claim_next(reviewer=alice)
    expire(task.pk)
    taken = services.task_claim_next(reviewer=bob)
    assert taken.pk == task.pk and taken.assignee_id == bob.pk and taken.state == "claimed"
    assert taken.lease_expires_at > timezone.now() + timedelta(minutes=14)
    ((actor, expired),) = events("task.expired")
    assert actor == "system" and expired["task"] == task.pk and expired["reviewer"] == alice.pk
    assert expired["lease_expired_at"]
    claims = events("task.claimed")
    assert [(a, e["task"]) for a, e in claims] == [("user:alice", task.pk), ("user:bob", task.pk)]
    # The expiry is filed before the claim that took the task over.
    expired_id = AuditEvent.objects.get(action="task.expired").pk
    assert expired_id < AuditEvent.objects.filter(action="task.claimed").order_by("-id")[0].pk
    with pytest.raises(ApplicationError) as refused:
        services.review_submit(task_id=task.pk, reviewer=alice, verdict="agree")
    assert refused.value.code == "lease_lost"
    services.review_submit(task_id=task.pk, reviewer=bob, verdict="agree")
    assert Decision.objects.get().status == "final"


def test_a_live_lease_is_never_taken_over(tiny_model, service, erin, alice, bob):
    routed(tiny_model, service, erin)
    services.task_claim_next(reviewer=alice)
    assert services.task_claim_next(reviewer=bob) is None
    assert events("task.expired") == []


def test_a_reviewer_may_take_their_own_expired_lease_again(tiny_model, service, erin, alice):
    routed(tiny_model, service, erin)
    task = services.task_claim_next(reviewer=alice)
    expire(task.pk)
    again = services.task_claim_next(reviewer=alice)
    assert again.pk == task.pk and again.lease_expires_at > timezone.now()
    ((_, expired),) = events("task.expired")
    assert expired["reviewer"] == alice.pk


def test_an_expired_lease_keeps_its_place_in_the_queue_order(tiny_model, service, erin, alice, bob):
    low, high = routed(tiny_model, service, erin, n=2)
    ReviewTask.objects.filter(decision=low).update(priority=10)
    ReviewTask.objects.filter(decision=high).update(priority=90)
    held = services.task_claim_next(reviewer=alice)
    assert held.decision_id == high.pk
    expire(held.pk)
    # The expired task comes first by priority, as it would once back in the queue.
    assert services.task_claim_next(reviewer=bob).pk == held.pk
    # And an expired lease of lower priority waits behind an open task of higher priority.
    ReviewTask.objects.filter(pk=held.pk).update(priority=5)
    expire(held.pk)
    assert services.task_claim_next(reviewer=alice).decision_id == low.pk


def test_an_expired_senior_only_task_goes_to_a_senior_only(
    tiny_model, service, erin, alice, bob, carol
):
    routed(tiny_model, service, erin)
    task = services.task_claim_next(reviewer=alice)
    ReviewTask.objects.filter(pk=task.pk).update(senior_only=True)
    expire(task.pk)
    assert services.task_claim_next(reviewer=bob) is None
    assert services.task_claim_next(reviewer=carol).pk == task.pk


# --- the 'involved' rule with a long history --------------------------------------------------


def _history(reviewer: User, template: Decision, n: int) -> None:
    """n past decisions, each with a done task the reviewer answered."""
    now = timezone.now()
    copies = []
    for i in range(n):
        copy = Decision.objects.get(pk=template.pk)
        copy.pk, copy.external_id, copy.subject_ref = None, f"past-{i}", f"s-past-{i}"
        copies.append(copy)
    Decision.objects.bulk_create(copies, batch_size=500)
    ReviewTask.objects.bulk_create(
        [
            ReviewTask(
                decision=d,
                model_id=d.model_id,
                kind="initial",
                state="done",
                due_at=now,
                assignee=reviewer,
                claimed_at=now,
                lease_expires_at=now,
                created_at=now,
                closed_at=now,
            )
            for d in copies
        ],
        batch_size=500,
    )


def test_the_involved_rule_still_refuses_with_a_long_history(tiny_model, service, erin, alice, bob):
    first, second = routed(tiny_model, service, erin, n=2, reviewers_required=2)
    _history(alice, first, 1500)
    # Alice answered the first decision's initial task; its second opinion comes first in the
    # queue, and is not hers to take.
    initial = ReviewTask.objects.get(decision=first, kind="initial")
    initial_second = ReviewTask.objects.get(decision=second, kind="initial")
    ReviewTask.objects.filter(pk=initial.pk).update(
        state="done", assignee=alice, claimed_at=timezone.now(), closed_at=timezone.now()
    )
    ReviewTask.objects.filter(decision=first, kind="second_opinion").update(priority=99)
    ReviewTask.objects.filter(pk=initial_second.pk).update(priority=50)
    taken = services.task_claim_next(reviewer=alice)
    assert taken.decision_id == second.pk
    # Nor the second decision's second opinion, now that she holds its initial task.
    assert services.task_claim_next(reviewer=alice) is None
    assert services.task_claim_next(reviewer=bob).decision_id == first.pk


def test_the_involved_rule_holds_for_an_expired_lease_of_a_decision_already_answered(
    tiny_model, service, erin, alice, bob
):
    (decision,) = routed(tiny_model, service, erin, reviewers_required=2)
    mine = services.task_claim_next(reviewer=alice)
    services.review_submit(task_id=mine.pk, reviewer=alice, verdict="agree")
    other = services.task_claim_next(reviewer=bob)
    assert other.decision_id == decision.pk
    expire(other.pk)
    # Bob's lease ran out; Alice answered this decision already, so it is not hers.
    assert services.task_claim_next(reviewer=alice) is None
    assert ReviewTask.objects.get(pk=other.pk).assignee_id == bob.pk


# --- statements per claim and per answer (PostgreSQL) ------------------------------------------


def _statements(captured) -> list[str]:
    """The statements sent, less the savepoints of nested atomic blocks (the test's own
    transaction turns the service's outermost block into one)."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


# Before issue 15 (part 2): 4 per claim (a lease sweep, the eligible task locked, the update,
# the event); 8 for the first of two answers (the decision's id, the decision locked, the task
# locked, the review, the task done, the tasks, the other review, the events) and 15 for the
# second, which settles (the final outcome, and the learning label's 6).
CLAIM_STATEMENTS = 2  # the claim (UPDATE … RETURNING), the event
ANSWER_STATEMENTS = 6  # decision lock, task lock, review, task done, the tasks, the events
# The settling answer was 13 until the label's step was cut from 6 statements to 3: its events
# go in the answer's one insert (audit.batched), the current label is retired and the webhook
# looked up in one statement, and the outbox message is one INSERT … ON CONFLICT DO NOTHING.
SETTLING_STATEMENTS = 10  # those, the final outcome, the label retired, the label, its message


@pytest.mark.postgres
def test_a_claim_is_two_statements_whatever_the_history(tiny_model, service, erin, alice, settings):
    settings.AUDIT_SEAL_INLINE = False
    first, _ = routed(tiny_model, service, erin, n=2)
    _history(alice, first, 300)
    reviewer = User.objects.get(pk=alice.pk)
    assert services.task_claim_next(reviewer=reviewer) is not None  # roles now cached
    with CaptureQueriesContext(connection) as captured:
        task = services.task_claim_next(reviewer=reviewer)
    assert task is not None
    statements = _statements(captured)
    assert len(statements) <= CLAIM_STATEMENTS, statements
    assert "SKIP LOCKED" in statements[0] and statements[0].lstrip().startswith("WITH")


@pytest.mark.postgres
def test_an_answer_is_few_statements(tiny_model, service, erin, alice, bob, settings):
    settings.AUDIT_SEAL_INLINE = False
    routed(tiny_model, service, erin, n=1, reviewers_required=2)
    first = services.task_claim_next(reviewer=alice)
    second = services.task_claim_next(reviewer=bob)
    with CaptureQueriesContext(connection) as captured:
        services.review_submit(task_id=first.pk, reviewer=alice, verdict="agree")
    waiting = _statements(captured)
    assert len(waiting) <= ANSWER_STATEMENTS, waiting
    with CaptureQueriesContext(connection) as captured:
        services.review_submit(task_id=second.pk, reviewer=bob, verdict="agree")
    settling = _statements(captured)
    assert Decision.objects.get().status == "final"
    assert len(settling) <= SETTLING_STATEMENTS, settling
    # The decision is locked before the task (the order every service keeps).
    locks = [sql for sql in settling if "FOR UPDATE" in sql]
    assert '"reviews_decision"' in locks[0].split("FOR UPDATE")[0].split("FROM", 1)[1][:40]
    assert '"reviews_reviewtask"' in locks[1].split("FROM", 1)[1][:40]


def test_the_prepare_threshold_setting():
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import _prepare_threshold

    assert _prepare_threshold(None) == 5 and _prepare_threshold("") == 5
    assert _prepare_threshold("off") is None and _prepare_threshold("None") is None
    assert _prepare_threshold("0") == 0 and _prepare_threshold("12") == 12
    for bad in ("-1", "soon"):
        with pytest.raises(ImproperlyConfigured):
            _prepare_threshold(bad)
    if ON_POSTGRES:
        connection.ensure_connection()
        assert connection.settings_dict["OPTIONS"]["prepare_threshold"] == 5
        assert connection.connection.prepare_threshold == 5


# --- the one-statement claim and eligible_tasks keep the same rules ---------------------------


def test_the_claim_takes_what_eligible_tasks_puts_first(tiny_model, service, erin, alice, carol):
    """On PostgreSQL the claim applies eligible_tasks's rules in its own SQL: for reviewers and
    seniors, with and without filters, it takes the task eligible_tasks lists first."""
    from reviews.selectors import eligible_tasks

    decisions = routed(tiny_model, service, erin, n=8, reviewers_required=2)
    tasks = list(ReviewTask.objects.order_by("id"))
    now = timezone.now()
    for n, task in enumerate(tasks):
        ReviewTask.objects.filter(pk=task.pk).update(
            priority=[10, 90, 50, 90][n % 4],
            due_at=now + timedelta(minutes=n % 3),
            senior_only=n % 5 == 0,
            kind="adjudication" if n % 7 == 0 else task.kind,
        )
    # Alice took part in the decision of the first task in the queue.
    top = eligible_tasks(alice).first()
    ReviewTask.objects.filter(decision_id=top.decision_id).exclude(pk=top.pk).update(
        state="done", assignee=alice
    )
    # An expired lease of someone else's.
    expired = ReviewTask.objects.filter(state="open").order_by("-id").first()
    ReviewTask.objects.filter(pk=expired.pk).update(
        state="claimed", assignee=erin, claimed_at=now, lease_expires_at=now - timedelta(seconds=1)
    )
    assert decisions
    for reviewer in (alice, carol):
        for filters in ({}, {"kind": "adjudication"}, {"kind": "initial"}, {"model": "tiny"}):
            expected = eligible_tasks(reviewer, expired_before=timezone.now(), **filters).first()
            taken = services.task_claim_next(reviewer=reviewer, **filters)
            assert (taken and taken.pk) == (expected and expected.pk), (reviewer, filters)
            if taken:
                services.task_release(task_id=taken.pk, reviewer=reviewer)
    assert services.task_claim_next(reviewer=alice, model="no-such-model") is None
    # Each claims all they may, one after the other: the senior-only tasks surface for the
    # senior once the rest are taken, and never for the reviewer.
    taken_by = {}
    for reviewer in (alice, carol):
        while True:
            expected = eligible_tasks(reviewer, expired_before=timezone.now()).first()
            taken = services.task_claim_next(reviewer=reviewer)
            assert (taken and taken.pk) == (expected and expected.pk), reviewer
            if taken is None:
                break
            taken_by[taken.pk] = reviewer.username
    senior_only = set(ReviewTask.objects.filter(senior_only=True).values_list("pk", flat=True))
    assert senior_only and {taken_by.get(pk) for pk in senior_only} <= {"carol", None}
    assert "carol" in {taken_by.get(pk) for pk in senior_only}
