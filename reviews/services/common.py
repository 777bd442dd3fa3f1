"""What the queue's services share: the lease, the event filed under the decision, locking a
decision and the task its reviewer holds, and opening a senior's adjudication."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from audit.log import Actor
from core import roles as r
from core.errors import ApplicationError, not_found
from core.rows import Part, columns, fetch, lock_clause
from models_registry.models import MLModel
from reviews.models import Decision, ReviewTask

OPEN, CLAIMED = ReviewTask.State.OPEN, ReviewTask.State.CLAIMED
DONE, CANCELLED = ReviewTask.State.DONE, ReviewTask.State.CANCELLED
ADJUDICATION_PRIORITY = 90


def lease() -> timedelta:
    return timedelta(minutes=settings.REVIEW_LEASE_MINUTES)


def event(action: str, actor: Actor, task: ReviewTask, **payload: Any) -> dict:
    """Queue events are filed under their decision, so a decision's history is one query."""
    return {
        "action": action,
        "actor": actor,
        "object_type": "decision",
        "object_id": task.decision_id,
        "payload": {"task": task.pk, "kind": task.kind, **payload},
    }


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def lock_decision(task_id: int) -> Decision:
    """The task's decision, locked. Every service that changes a decision and its tasks locks
    the decision first, then the tasks: two answers on sibling tasks then queue up on the
    decision instead of each holding one task and waiting for the other's (a deadlock)."""
    # One statement: the task's decision found by a subquery (a task's decision never
    # changes), with its model. Lock the decision, not the model joined to it: that row is
    # shared by every decision.
    rows = fetch(_LOCK_DECISION + lock_clause(of="d"), [task_id], [_DECISION, _MODEL])
    if not rows:
        raise not_found("No such task.")
    decision, model = rows[0]
    decision.model = model
    return decision


def held(task_id: int, reviewer: User, now: datetime) -> ReviewTask:
    """The task, locked, if the reviewer holds a live lease on it; a clear 409 otherwise.

    Task ids are not secret among reviewers, so anyone with the reviewer role who acts on a
    task they do not hold is told so (409 `lease_lost`); anyone else is told nothing (404)."""
    rows = fetch(_LOCK_TASK + lock_clause(), [task_id], [_TASK])
    task = rows[0][0] if rows else None
    if task is None or not r.has_role(reviewer, r.REVIEWER):
        raise not_found("No such task.")
    if task.state != CLAIMED or task.assignee_id != reviewer.pk:
        raise ApplicationError(not_held_message(task, reviewer), code="lease_lost")
    if task.lease_expires_at <= now:
        raise ApplicationError(
            f"Your lease on this task expired at {task.lease_expires_at:%H:%M:%S} UTC and the "
            "task went back to the queue. Your answer was not saved.",
            code="lease_lost",
        )
    return task


# The two locks every answer takes, as fixed SQL (core.rows): the ORM compiled the same
# statements on every call, which was most of an answer's Python.
_DECISION, _MODEL, _TASK = Part(Decision, "d"), Part(MLModel, "m"), Part(ReviewTask, "t")
_LOCK_DECISION = (
    f"SELECT {columns(_DECISION, _MODEL)} "  # noqa: S608 (constant names; the id a parameter)
    f'FROM "{Decision._meta.db_table}" d JOIN "{MLModel._meta.db_table}" m ON m.id = d.model_id '
    f'WHERE d.id = (SELECT decision_id FROM "{ReviewTask._meta.db_table}" WHERE id = %s)'
)
_LOCK_TASK = f'SELECT {columns(_TASK)} FROM "{ReviewTask._meta.db_table}" t WHERE t.id = %s'  # noqa: S608


def not_held_message(task: ReviewTask, reviewer: User) -> str:
    if task.assignee_id == reviewer.pk and task.state == DONE:
        why = "You already answered this task."
    elif task.assignee_id == reviewer.pk:
        why = "This task was closed meanwhile (the decision was settled, or it was escalated)."
    elif task.state == CLAIMED:
        why = "You do not hold this task: it is held by someone else now."
    elif task.state == OPEN:
        why = "You do not hold this task any more: your lease ran out or was released."
    else:
        why = f"You do not hold this task (it is {task.state})."
    return f"{why} Nothing was saved. Claim the next task instead."


def already_final(decision: Decision) -> ApplicationError:
    return ApplicationError(
        f"Decision {decision.pk} is already final ({decision.final_outcome}): there is nothing "
        "left for a senior reviewer to settle. Release the task or claim the next one.",
        code="already_final",
    )


def appeal_task_refused() -> ApplicationError:
    return ApplicationError(
        "This is an appeal task: it is decided on its appeal (the appeal's page, or POST "
        "/api/v1/appeals/{id}/decision/), upheld or overturned with reasons for the person. "
        "Nothing was saved.",
        code="appeal_task",
    )


def open_adjudication(
    decision: Decision, now: datetime, *, note: str, priority: int, gold: bool = False
) -> ReviewTask:
    """A senior's task on a decision still open: on a final one every answer would be refused.
    With `gold`, a known-answer copy of one (its item is final; the answer settles nothing)."""
    if decision.status == Decision.Status.FINAL and not gold:
        raise already_final(decision)
    policy_hours = (
        decision.model.policies.order_by("-version").values_list("sla_hours", flat=True).first()
    )
    return ReviewTask.objects.create(
        decision=decision,
        model_id=decision.model_id,
        kind=ReviewTask.Kind.ADJUDICATION,
        priority=priority,
        due_at=now + timedelta(hours=policy_hours or 48),
        senior_only=True,
        is_gold=gold,
        note=note,
        created_at=now,
    )
