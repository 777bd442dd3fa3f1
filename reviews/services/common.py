"""What the queue's services share: the lease, the event filed under the decision, locking a
decision and the task its reviewer holds, and opening a senior's adjudication."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models, transaction

from audit.log import Actor
from core import roles as r
from core.errors import ApplicationError, not_found
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
    rows = _fetch(_LOCK_DECISION, [task_id])
    if not rows:
        raise not_found("No such task.")
    decision, model = rows[0]
    decision.model = model
    return decision


def held(task_id: int, reviewer: User, now: datetime) -> ReviewTask:
    """The task, locked, if the reviewer holds a live lease on it; a clear 409 otherwise.

    Task ids are not secret among reviewers, so anyone with the reviewer role who acts on a
    task they do not hold is told so (409 `lease_lost`); anyone else is told nothing (404)."""
    rows = _fetch(_LOCK_TASK, [task_id])
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


# The two locks every answer takes, as fixed SQL: the ORM compiled the same statements on
# every call, which was most of an answer's Python. Rows become model instances with each
# column's converters applied, as the ORM's own reads do.
class _Read:
    """A fixed SELECT of one row per model in `tables`, locked by `lock` where the database
    has row locks (SQLite locks the whole database on a write)."""

    def __init__(self, sql: str, lock: str, *tables: type[models.Model]) -> None:
        self.sql, self.lock, self.tables = sql, lock, tables


def _columns(model: type[models.Model], alias: str) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


_DECISIONS, _MODELS, _TASKS = (
    Decision._meta.db_table,
    MLModel._meta.db_table,
    ReviewTask._meta.db_table,
)
_LOCK_DECISION = _Read(
    f"SELECT {_columns(Decision, 'd')}, {_columns(MLModel, 'm')} "  # noqa: S608 (constants)
    f'FROM "{_DECISIONS}" d JOIN "{_MODELS}" m ON m.id = d.model_id '
    f'WHERE d.id = (SELECT decision_id FROM "{_TASKS}" WHERE id = %s)',
    " FOR UPDATE OF d",
    Decision,
    MLModel,
)
_LOCK_TASK = _Read(
    f'SELECT {_columns(ReviewTask, "t")} FROM "{_TASKS}" t WHERE t.id = %s',  # noqa: S608
    " FOR UPDATE",
    ReviewTask,
)
_converters: dict[tuple[str, type[models.Model]], list] = {}


def _converters_of(connection, model: type[models.Model]) -> list:
    """Per column: (its Col expression, the converters the ORM applies to it on this
    database), found once per process."""
    key = (connection.vendor, model)
    if key not in _converters:
        found = []
        for field in model._meta.concrete_fields:
            col = field.get_col(model._meta.db_table)
            convs = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            found.append((col, convs))
        _converters[key] = found
    return _converters[key]


def _fetch(read: _Read, params: list) -> list[tuple[models.Model, ...]]:
    connection = transaction.get_connection()
    sql = read.sql + (read.lock if connection.features.has_select_for_update else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found = []
    for row in rows:
        objs, start = [], 0
        for model in read.tables:
            fields = model._meta.concrete_fields
            values = list(row[start : start + len(fields)])
            for i, (col, convs) in enumerate(_converters_of(connection, model)):
                for convert in convs:
                    values[i] = convert(values[i], col, connection)
            objs.append(model.from_db(connection.alias, [f.attname for f in fields], values))
            start += len(fields)
        found.append(tuple(objs))
    return found


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
