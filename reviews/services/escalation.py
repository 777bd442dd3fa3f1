"""Escalation: a reviewer hands a case to a senior reviewer with a note."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import record_many
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
    """Hand the case to a senior reviewer with a note; returns the adjudication task.

    A known-answer copy is escalated like any task, so that nothing in the answer tells the
    reviewer it was one: it opens a known-answer adjudication (a copy too, served to a senior
    as an ordinary adjudication, whose answer is compared with the known answer and settles
    nothing)."""
    note = (note or "").strip()
    if not note:
        raise invalid({"note": ["say why you escalate: the senior reviewer reads it first"]})
    now = timezone.now()
    with transaction.atomic():
        decision = lock_decision(task_id)
        task = held(task_id, reviewer, now)
        if task.kind == ReviewTask.Kind.APPEAL:
            raise appeal_task_refused()
        if decision.status == Decision.Status.FINAL and not task.is_gold:
            raise already_final(decision)
        _close(task, note, now)
        senior, opened = _adjudication_for(
            decision, task, f"Escalated by {reviewer.username}: {note}", now
        )
        events = [
            event(
                "task.escalated", reviewer, task, note=note, gold=task.is_gold, new_task=senior.pk
            )
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
    is new. A known-answer copy's goes to the item's open known-answer adjudication, or a new
    one."""
    current = (
        decision.tasks.select_for_update()
        .filter(kind=ReviewTask.Kind.ADJUDICATION, state__in=[OPEN, CLAIMED], is_gold=task.is_gold)
        .first()
    )
    if current is None:
        priority = max(task.priority, ADJUDICATION_PRIORITY)
        opened = open_adjudication(decision, now, note=note, priority=priority, gold=task.is_gold)
        return opened, True
    current.note = f"{current.note}\n{note}".strip()
    current.save(update_fields=["note"])
    return current, False


def _close(task: ReviewTask, note: str, now: datetime) -> None:
    task.state, task.closed_at, task.note = CANCELLED, now, note
    task.save(update_fields=["state", "closed_at", "note"])
