"""Claims and leases: taking the next task, renewing, releasing, and expiry.

A claim is a lease. Two reviewers never hold the same task: on PostgreSQL the next task is
locked with SELECT … FOR UPDATE SKIP LOCKED, elsewhere it is taken with a conditional update
whose row count says who won. A reviewer is never given a second task on a decision they
already hold, answered or escalated (a database constraint and reviews.selectors.eligible_tasks),
so second opinions go to someone else, adjudication to a senior who had no part in it, and an
appeal to a senior who neither answered nor adjudicated any of the decision's tasks.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit import record, record_many
from core import roles as r
from core.errors import ApplicationError
from reviews import hooks
from reviews.models import ReviewTask
from reviews.selectors import eligible_tasks
from reviews.services.common import CLAIMED, OPEN, event, held, iso, lease


def task_claim_next(
    *, reviewer: User, model: str | None = None, kind: str | None = None
) -> ReviewTask | None:
    """Lease the next eligible task to the reviewer, or None when there is nothing for them."""
    if not r.has_role(reviewer, r.REVIEWER):
        raise ApplicationError("Claiming tasks needs the reviewer role.", status=403)
    leases_expire()  # lazily: an expired lease is back in the queue before anyone looks
    for _attempt in range(10):
        try:
            with transaction.atomic():
                task = _take(reviewer, eligible_tasks(reviewer, model=model, kind=kind))
                if task:
                    expires = iso(task.lease_expires_at)
                    record(**event("task.claimed", reviewer, task, lease_expires_at=expires))
                    hooks.claimed(task)
        except IntegrityError:
            # The same reviewer claimed another task of this decision at the same moment (two
            # tabs); the database refused the second. Look again.
            continue
        if task is not False:
            return task
        # Another reviewer won that row (SQLite's conditional update); look again.
    return None


def _take(reviewer: User, candidates: QuerySet[ReviewTask]) -> ReviewTask | bool | None:
    now = timezone.now()
    claim = {
        "state": CLAIMED,
        "assignee": reviewer,
        "claimed_at": now,
        "lease_expires_at": now + lease(),
    }
    if connection.vendor == "postgresql":
        task = candidates.select_for_update(skip_locked=True, of=("self",)).first()
        if task is None:
            return None
        for field, value in claim.items():
            setattr(task, field, value)
        task.save(update_fields=[*claim])
        return task
    task_id = candidates.values_list("id", flat=True).first()
    if task_id is None:
        return None
    if not ReviewTask.objects.filter(pk=task_id, state=OPEN).update(**claim):
        return False
    return ReviewTask.objects.get(pk=task_id)


def task_renew(*, task_id: int, reviewer: User) -> ReviewTask:
    now = timezone.now()
    with transaction.atomic():
        task = held(task_id, reviewer, now)
        task.lease_expires_at = now + lease()
        task.save(update_fields=["lease_expires_at"])
        record(**event("task.renewed", reviewer, task, lease_expires_at=iso(task.lease_expires_at)))
    return task


def task_release(*, task_id: int, reviewer: User) -> ReviewTask:
    now = timezone.now()
    with transaction.atomic():
        task = held(task_id, reviewer, now)
        _reopen(task)
        record(**event("task.released", reviewer, task))
    return task


def _reopen(task: ReviewTask) -> None:
    task.state, task.assignee, task.claimed_at, task.lease_expires_at = OPEN, None, None, None
    task.save(update_fields=["state", "assignee", "claimed_at", "lease_expires_at"])


def leases_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Return tasks whose lease ran out to the queue. Run by beat and before each claim."""
    now = now or timezone.now()
    if not ReviewTask.objects.filter(state=CLAIMED, lease_expires_at__lt=now).exists():
        return 0
    with transaction.atomic():
        expired = list(
            ReviewTask.objects.select_for_update(skip_locked=True)
            .filter(state=CLAIMED, lease_expires_at__lt=now)
            .order_by("lease_expires_at")[:limit]
        )
        events = [
            event(
                "task.expired",
                None,
                task,
                reviewer=task.assignee_id,
                lease_expired_at=iso(task.lease_expires_at),
            )
            for task in expired
        ]
        for task in expired:
            _reopen(task)
        record_many(events)
    return len(expired)
