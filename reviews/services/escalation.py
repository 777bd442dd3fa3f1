"""Escalation: a reviewer hands a case to a senior reviewer with a note."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import record, record_many
from core.errors import invalid
from reviews.models import Decision, ReviewTask
from reviews.services.common import (
    ADJUDICATION_PRIORITY,
    CANCELLED,
    CLAIMED,
    OPEN,
    already_final,
    appeal_task_refused,
    event,
    held,
    lock_decision,
    open_adjudication,
)


def task_escalate(*, task_id: int, reviewer: User, note: str) -> ReviewTask:
    """Hand the case to a senior reviewer with a note; returns the new adjudication task (the
    closed task itself for a known-answer check, which no senior needs to settle)."""
    note = (note or "").strip()
    if not note:
        raise invalid({"note": ["say why you escalate: the senior reviewer reads it first"]})
    now = timezone.now()
    with transaction.atomic():
        decision = lock_decision(task_id)
        task = held(task_id, reviewer, now)
        if task.kind == ReviewTask.Kind.APPEAL:
            raise appeal_task_refused()
        if task.is_gold:
            return _close_gold(task, reviewer, note, now)
        if decision.status == Decision.Status.FINAL:
            raise already_final(decision)
        _close(task, note, now)
        senior, opened = _adjudication_for(
            decision, task, f"Escalated by {reviewer.username}: {note}", now
        )
        events = [
            event("task.escalated", reviewer, task, note=note, gold=False, new_task=senior.pk)
        ]
        if opened:
            events.append(event("task.opened", reviewer, senior, reason="escalation"))
        record_many(events)
    return senior


def _adjudication_for(
    decision: Decision, task: ReviewTask, note: str, now: datetime
) -> tuple[ReviewTask, bool]:
    """The decision's open adjudication, with this note added (both reviewers of a
    two-reviewer decision may escalate: one senior settles it), or a new one; and whether it
    is new."""
    current = (
        decision.tasks.select_for_update()
        .filter(kind=ReviewTask.Kind.ADJUDICATION, state__in=[OPEN, CLAIMED])
        .first()
    )
    if current is None:
        priority = max(task.priority, ADJUDICATION_PRIORITY)
        return open_adjudication(decision, now, note=note, priority=priority), True
    current.note = f"{current.note}\n{note}".strip()
    current.save(update_fields=["note"])
    return current, False


def _close_gold(task: ReviewTask, reviewer: User, note: str, now: datetime) -> ReviewTask:
    """A gold item's decision is not at stake: an adjudication on it would only jam a senior's
    queue (every answer refused as already final). The note is kept with the closed task."""
    _close(task, note, now)
    record(**event("task.escalated", reviewer, task, note=note, gold=True))
    return task


def _close(task: ReviewTask, note: str, now: datetime) -> None:
    task.state, task.closed_at, task.note = CANCELLED, now, note
    task.save(update_fields=["state", "closed_at", "note"])
