"""Claims and leases: taking the next task, renewing, releasing, and expiry.

A claim is a lease. Two reviewers never hold the same task: on PostgreSQL the claim is one
statement, UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING …; elsewhere
the task is taken with a conditional update whose row count says who won. A task whose lease
ran out is taken over by the claim itself (no sweep before each claim). A reviewer is never
given a second task on a decision they already hold, answered or escalated (a database
constraint and reviews.selectors.eligible_tasks), so second opinions go to someone else,
adjudication to a senior who had no part in it, and an appeal to a senior who neither answered
nor adjudicated any of the decision's tasks.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit import record, record_many
from core import roles as r
from core.errors import ApplicationError
from models_registry.models import MLModel
from reviews import hooks
from reviews.models import ReviewTask
from reviews.selectors import eligible_tasks
from reviews.services.common import CLAIMED, OPEN, event, held, iso, lease


def task_claim_next(
    *, reviewer: User, model: str | None = None, kind: str | None = None
) -> ReviewTask | None:
    """Lease the next eligible task to the reviewer, or None when there is nothing for them.

    A task whose lease ran out is eligible as it stands (the claim's WHERE clause takes it
    over, filing the expiry for its previous holder first): no sweep of expired leases runs
    before a claim; beat's leases_expire returns the ones nobody claims to the queue."""
    if not r.has_role(reviewer, r.REVIEWER):
        raise ApplicationError("Claiming tasks needs the reviewer role.", status=403)
    senior = r.has_role(reviewer, r.SENIOR_REVIEWER)
    for _attempt in range(10):
        try:
            with transaction.atomic():
                taken = _take(reviewer, senior=senior, model=model, kind=kind)
                if taken:
                    task, expired = taken
                    expires = iso(task.lease_expires_at)
                    events = [event("task.claimed", reviewer, task, lease_expires_at=expires)]
                    if expired is not None:
                        events.insert(0, _expired_event(task, *expired))
                    record_many(events)
                    hooks.claimed(task)
        except IntegrityError:
            # The same reviewer claimed another task of this decision at the same moment (two
            # tabs); the database refused the second. Look again.
            continue
        if taken is not False:
            return taken[0] if taken else None
        # Another reviewer won that row (SQLite's conditional update); look again.
    return None


Taken = tuple[ReviewTask, "tuple[int | None, datetime | None] | None"]


def _take(
    reviewer: User, *, senior: bool, model: str | None, kind: str | None
) -> Taken | bool | None:
    """(the task now leased to the reviewer, (previous holder, their lease's end) when it was
    taken over from an expired lease); None when there is nothing; False when another
    reviewer won the row (SQLite)."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        return _take_postgres(reviewer, senior=senior, model=model, kind=kind, now=now)
    candidates = eligible_tasks(reviewer, model=model, kind=kind, expired_before=now)
    found = candidates.values_list("id", "state", "assignee_id", "lease_expires_at").first()
    if found is None:
        return None
    task_id, state, holder, held_until = found
    # Still as it was read: open, or the same expired lease (nobody renewed or took it).
    same = {"state": state, "assignee_id": holder, "lease_expires_at": held_until}
    claim = {
        "state": CLAIMED,
        "assignee": reviewer,
        "claimed_at": now,
        "lease_expires_at": now + lease(),
    }
    if not ReviewTask.objects.filter(pk=task_id, **same).update(**claim):
        return False
    task = ReviewTask.objects.get(pk=task_id)
    return task, ((holder, held_until) if state == CLAIMED else None)


_COLUMNS = [f.column for f in ReviewTask._meta.concrete_fields]
_ATTNAMES = [f.attname for f in ReviewTask._meta.concrete_fields]
_TASKS = ReviewTask._meta.db_table
_MODELS = MLModel._meta.db_table
# One eligible task, next first, locked (SKIP LOCKED: whatever another claim holds is passed
# over). The rules are eligible_tasks's, which tests hold the two to: open (or, in the second
# query, claimed under a lease that ran out), not senior-only unless the reviewer is a senior,
# of the model and kind asked for, and on a decision the reviewer holds or held no other task
# of. That last rule is a probe of task_involved_idx (decision_id, assignee_id) per candidate:
# OFFSET 0 keeps the planner from turning it into an anti-join that reads the reviewer's whole
# history of tasks.
_CANDIDATE = f"""
    SELECT t.id, t.state, t.assignee_id, t.lease_expires_at, t.priority, t.due_at
    FROM {_TASKS} t
    WHERE {{live}}{{rules}}
      AND NOT EXISTS (
        SELECT 1 FROM {_TASKS} i
        WHERE i.decision_id = t.decision_id AND i.assignee_id = %(reviewer)s AND i.id <> t.id
        OFFSET 0)
    ORDER BY t.priority DESC, t.due_at, t.id
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED"""  # noqa: S608 (constant table names; values are parameters)


def _claim_sql(*, senior: bool, model: bool, kind: bool) -> str:
    """The claim in one statement: the next open task and the next expired lease (each on its
    own partial index), the first of the two in the queue's order, leased to the reviewer;
    RETURNING the task and what it was before."""
    rules = "" if senior else " AND NOT t.senior_only"
    if model:
        rules += f" AND t.model_id IN (SELECT id FROM {_MODELS} WHERE name = %(model)s)"  # noqa: S608
    if kind:
        rules += " AND t.kind = %(kind)s"
    fresh = _CANDIDATE.format(live="t.state = 'open'", rules=rules)
    expired = _CANDIDATE.format(
        live="t.state = 'claimed' AND t.lease_expires_at < %(now)s", rules=rules
    )
    returned = ", ".join(f"t.{column}" for column in _COLUMNS)
    return f"""
        WITH fresh AS ({fresh}),
        expired AS ({expired}),
        pick AS (
            SELECT * FROM fresh UNION ALL SELECT * FROM expired
            ORDER BY priority DESC, due_at, id LIMIT 1)
        UPDATE {_TASKS} t
        SET state = 'claimed', assignee_id = %(reviewer)s, claimed_at = %(now)s,
            lease_expires_at = %(expires)s
        FROM pick WHERE t.id = pick.id
        RETURNING {returned}, pick.state, pick.assignee_id, pick.lease_expires_at"""  # noqa: S608


_CLAIM_SQL = {
    (senior, model, kind): _claim_sql(senior=senior, model=model, kind=kind)
    for senior in (False, True)
    for model in (False, True)
    for kind in (False, True)
}


def _take_postgres(
    reviewer: User, *, senior: bool, model: str | None, kind: str | None, now: datetime
) -> Taken | None:
    sql = _CLAIM_SQL[senior, bool(model), bool(kind)]
    params = {
        "reviewer": reviewer.pk,
        "now": now,
        "expires": now + lease(),
        "model": model,
        "kind": kind,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(_COLUMNS)
    task = ReviewTask.from_db(connection.alias, _ATTNAMES, row[:n])
    state, holder, held_until = row[n:]
    return task, ((holder, held_until) if state == CLAIMED else None)


def _expired_event(task: ReviewTask, holder: int | None, held_until: datetime | None) -> dict:
    """The expiry of the lease a claim took over, as leases_expire files it."""
    return event("task.expired", None, task, reviewer=holder, lease_expired_at=iso(held_until))


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
    """Return tasks whose lease ran out to the queue. Run by beat (and the embedded periodic
    jobs) and by the queue page; a claim takes an expired lease over by itself."""
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
