"""Real threads on PostgreSQL: many reviewers claiming and answering at once."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from audit.verification import verify_log
from models_registry import services as registry
from reviews import services
from reviews.models import Decision, ReviewTask
from reviews.services import decisions_ingest
from tests.fixtures import item, make_user
from tests.threads import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REVIEWERS = 16
TASKS = 1200


def test_sixteen_reviewers_never_share_a_task_and_none_is_lost(tiny_model, service, erin):
    registry.policy_update(model=tiny_model, changes={"review_all": True}, actor=erin, note="test")
    for start in range(0, TASKS, 400):
        decisions_ingest(items=[item(n) for n in range(start, start + 400)], actor=service.user)
    assert ReviewTask.objects.filter(state="open").count() == TASKS
    reviewers = [make_user(f"r{n:02d}", "reviewer") for n in range(REVIEWERS)]

    def work(reviewer) -> list[int]:
        claimed = []
        while (task := services.task_claim_next(reviewer=reviewer)) is not None:
            claimed.append(task.pk)
            services.review_submit(task_id=task.pk, reviewer=reviewer, verdict="agree")
        return claimed

    claimed, errors = at_once(work, [(reviewer,) for reviewer in reviewers])
    assert errors == []
    every_claim = [task_id for claims in claimed for task_id in claims]
    assert Counter(every_claim).most_common(1)[0][1] == 1  # no task claimed twice
    assert len(every_claim) == TASKS  # none lost
    assert sum(1 for claims in claimed if claims) > 1  # the work really was shared
    assert set(ReviewTask.objects.values_list("state", flat=True)) == {"done"}  # none left claimed
    assert Decision.objects.filter(status="final", finalized_by="reviewer").count() == TASKS
    assert verify_log().ok


EXPIRED = 150


def test_expired_leases_taken_over_at_once_go_to_one_reviewer_each_and_expire_once(
    tiny_model, service, erin
):
    """Claims take expired leases over in their WHERE clause, while beat's sweep runs too:
    each expired task goes to one reviewer, and its expiry is filed once."""
    registry.policy_update(model=tiny_model, changes={"review_all": True}, actor=erin, note="test")
    decisions_ingest(items=[item(n) for n in range(2 * EXPIRED)], actor=service.user)
    ghost = make_user("ghost", "reviewer")
    held = [services.task_claim_next(reviewer=ghost).pk for _ in range(EXPIRED)]
    ReviewTask.objects.filter(pk__in=held).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    reviewers = [make_user(f"t{n:02d}", "reviewer") for n in range(8)]

    def work(reviewer) -> list[int]:
        if reviewer is None:  # beat's sweep, at the same time
            for _ in range(20):
                services.leases_expire(limit=5)
            return []
        claimed = []
        while (task := services.task_claim_next(reviewer=reviewer)) is not None:
            claimed.append(task.pk)
            services.review_submit(task_id=task.pk, reviewer=reviewer, verdict="agree")
        return claimed

    claimed, errors = at_once(work, [(reviewer,) for reviewer in [*reviewers, None]])
    assert errors == []
    every_claim = [task_id for claims in claimed for task_id in claims]
    assert Counter(every_claim).most_common(1)[0][1] == 1  # no task claimed twice
    assert len(every_claim) == 2 * EXPIRED  # the expired ones too, none lost
    assert set(ReviewTask.objects.values_list("state", flat=True)) == {"done"}
    expiries = Counter(
        json.loads(payload)["task"]
        for payload in AuditEvent.objects.filter(action="task.expired").values_list(
            "payload", flat=True
        )
    )
    assert set(expiries) == set(held) and set(expiries.values()) == {1}
    assert verify_log().ok
