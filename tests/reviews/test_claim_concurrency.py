"""Real threads on PostgreSQL: many reviewers claiming and answering at once."""

from __future__ import annotations

from collections import Counter

import pytest

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
