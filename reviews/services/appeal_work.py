"""The queue's side of an appeal: its senior-only task, and a final outcome changed by it.

The appeals app (above this one) calls these inside its own transactions, after locking the
decision (always first, as every service here does); it writes the audit events of the appeal
and the settlement hook. A final outcome is otherwise set once (answers._finalize); only an
appeal may change it, and only through decision_outcome_by_appeal."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User

from core.errors import ApplicationError
from reviews.models import Decision, ReviewTask
from reviews.services.common import CANCELLED, CLAIMED, OPEN

# Above adjudications (90): a person has been waiting for an answer to a final decision.
APPEAL_PRIORITY = 100


def appeal_task_open(
    *, decision: Decision, due_at: datetime, now: datetime, note: str
) -> ReviewTask:
    """The senior-only task that decides an appeal of a final decision (locked by the caller)."""
    if decision.status != Decision.Status.FINAL:
        raise ApplicationError("Only a final decision can be appealed.", code="not_final")
    return ReviewTask.objects.create(
        decision=decision,
        model_id=decision.model_id,
        kind=ReviewTask.Kind.APPEAL,
        priority=APPEAL_PRIORITY,
        due_at=due_at,
        senior_only=True,
        blind=False,
        note=note,
        created_at=now,
    )


def appeal_task_cancel(*, task_id: int, now: datetime) -> bool:
    """Close an appeal's task that is still waiting or held (the appeal was withdrawn); the
    holder's next action on it is refused as a lost lease. True if it was open or held."""
    task = ReviewTask.objects.select_for_update().get(pk=task_id, kind=ReviewTask.Kind.APPEAL)
    if task.state not in (OPEN, CLAIMED):
        return False
    task.state, task.closed_at = CANCELLED, now
    task.save(update_fields=["state", "closed_at"])
    return True


def appeal_task_done(*, task: ReviewTask, now: datetime) -> None:
    task.state, task.closed_at = ReviewTask.State.DONE, now
    task.save(update_fields=["state", "closed_at"])


def decision_outcome_by_appeal(
    *, decision: Decision, outcome: str, by: User, now: datetime, appeal_id: int
) -> dict:
    """Set the final outcome of a final decision (locked by the caller) as an appeal overturned
    it; returns the `decision.finalized` audit event for the caller to record with the
    appeal's own."""
    if decision.status != Decision.Status.FINAL:
        raise ApplicationError("Only a final decision's outcome is changed by an appeal.")
    if outcome not in decision.model.labels or outcome == decision.final_outcome:
        raise ApplicationError(f"An overturn must change the outcome ({decision.final_outcome}).")
    before, before_by = decision.final_outcome, decision.finalized_by
    Decision.objects.filter(pk=decision.pk).update(
        final_outcome=outcome,
        finalized_by=Decision.FinalizedBy.APPEAL,
        finalized_by_user=by,
        finalized_at=now,
    )
    decision.final_outcome, decision.finalized_by = outcome, Decision.FinalizedBy.APPEAL
    decision.finalized_by_user, decision.finalized_at = by, now
    return {
        "action": "decision.finalized",
        "actor": by,
        "obj": decision,
        "payload": {
            "final_outcome": outcome,
            "model_outcome": decision.model_outcome,
            "overridden": outcome != decision.model_outcome,
            "finalized_by": Decision.FinalizedBy.APPEAL,
            "appeal": appeal_id,
            "previous_outcome": before,
            "previous_finalized_by": before_by,
        },
    }
