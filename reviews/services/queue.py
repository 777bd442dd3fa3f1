"""The review queue: claims and leases, answers, agreement and adjudication, escalation, and
known-answer (gold) checks.

A claim is a lease. Two reviewers never hold the same task: on PostgreSQL the next task is
locked with SELECT … FOR UPDATE SKIP LOCKED, elsewhere it is taken with a conditional update
whose row count says who won. A reviewer is never given a second task on a decision they
already hold, answered or escalated, so second opinions go to someone else and adjudication to
a senior reviewer who had no part in the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404
from django.utils import timezone

from audit import record, record_many
from audit.log import Actor
from core import roles as r
from core.errors import ApplicationError
from models_registry.services import invalid
from reviews.models import Decision, GoldLabel, Review, ReviewTask

OPEN, CLAIMED = ReviewTask.State.OPEN, ReviewTask.State.CLAIMED
DONE, CANCELLED = ReviewTask.State.DONE, ReviewTask.State.CANCELLED
ADJUDICATION_PRIORITY = 90
GOLD_PRIORITY = 20


def lease() -> timedelta:
    return timedelta(minutes=settings.REVIEW_LEASE_MINUTES)


def _event(action: str, actor: Actor, task: ReviewTask, **payload: Any) -> dict:
    """Queue events are filed under their decision, so a decision's history is one query."""
    return {
        "action": action,
        "actor": actor,
        "object_type": "decision",
        "object_id": task.decision_id,
        "payload": {"task": task.pk, "kind": task.kind, **payload},
    }


# --- claiming ------------------------------------------------------------------------------


def eligible_tasks(
    reviewer: User, *, model: str | None = None, kind: str | None = None
) -> QuerySet[ReviewTask]:
    """Open tasks this reviewer may take, next first: highest priority, then earliest due."""
    tasks = ReviewTask.objects.filter(state=OPEN)
    if not r.has_role(reviewer, r.SENIOR_REVIEWER):
        tasks = tasks.filter(senior_only=False)
    if model:
        tasks = tasks.filter(model__name=model)
    if kind:
        tasks = tasks.filter(kind=kind)
    involved = ReviewTask.objects.filter(decision_id=OuterRef("decision_id"), assignee=reviewer)
    return tasks.exclude(Exists(involved)).order_by("-priority", "due_at", "id")


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
                    expires = _iso(task.lease_expires_at)
                    record(**_event("task.claimed", reviewer, task, lease_expires_at=expires))
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


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# --- holding a task: renew, release, escalate ----------------------------------------------


def _lock_decision(task_id: int) -> Decision:
    """The task's decision, locked. Every service that changes a decision and its tasks locks
    the decision first, then the tasks: two answers on sibling tasks then queue up on the
    decision instead of each holding one task and waiting for the other's (a deadlock)."""
    decision_id = (
        ReviewTask.objects.filter(pk=task_id).values_list("decision_id", flat=True).first()
    )
    if decision_id is None:
        raise Http404("No such task.")
    # Lock the decision, not the model joined to it: that row is shared by every decision.
    return (
        Decision.objects.select_for_update(of=("self",)).select_related("model").get(pk=decision_id)
    )


def _held(task_id: int, reviewer: User, now: datetime) -> ReviewTask:
    """The task, locked, if the reviewer holds a live lease on it; a clear 409 otherwise.

    Task ids are not secret among reviewers, so anyone with the reviewer role who acts on a
    task they do not hold is told so (409 `lease_lost`); anyone else is told nothing (404)."""
    task = ReviewTask.objects.select_for_update().filter(pk=task_id).first()
    if task is None or not r.has_role(reviewer, r.REVIEWER):
        raise Http404("No such task.")
    if task.state != CLAIMED or task.assignee_id != reviewer.pk:
        raise ApplicationError(_not_held_message(task, reviewer), code="lease_lost")
    if task.lease_expires_at <= now:
        raise ApplicationError(
            f"Your lease on this task expired at {task.lease_expires_at:%H:%M:%S} UTC and the "
            "task went back to the queue. Your answer was not saved.",
            code="lease_lost",
        )
    return task


def _not_held_message(task: ReviewTask, reviewer: User) -> str:
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


def task_renew(*, task_id: int, reviewer: User) -> ReviewTask:
    now = timezone.now()
    with transaction.atomic():
        task = _held(task_id, reviewer, now)
        task.lease_expires_at = now + lease()
        task.save(update_fields=["lease_expires_at"])
        record(
            **_event("task.renewed", reviewer, task, lease_expires_at=_iso(task.lease_expires_at))
        )
    return task


def task_release(*, task_id: int, reviewer: User) -> ReviewTask:
    now = timezone.now()
    with transaction.atomic():
        task = _held(task_id, reviewer, now)
        _reopen(task)
        record(**_event("task.released", reviewer, task))
    return task


def _reopen(task: ReviewTask) -> None:
    task.state, task.assignee, task.claimed_at, task.lease_expires_at = OPEN, None, None, None
    task.save(update_fields=["state", "assignee", "claimed_at", "lease_expires_at"])


def task_escalate(*, task_id: int, reviewer: User, note: str) -> ReviewTask:
    """Hand the case to a senior reviewer with a note; returns the new adjudication task (the
    closed task itself for a known-answer check, which no senior needs to settle)."""
    note = (note or "").strip()
    if not note:
        raise invalid({"note": ["say why you escalate: the senior reviewer reads it first"]})
    now = timezone.now()
    with transaction.atomic():
        decision = _lock_decision(task_id)
        task = _held(task_id, reviewer, now)
        if task.is_gold:
            return _close_gold(task, reviewer, note, now)
        if decision.status == Decision.Status.FINAL:
            raise _already_final(decision)
        _close(task, note, now)
        senior = _adjudication_for(decision, task, f"Escalated by {reviewer.username}: {note}", now)
        record(
            **_event("task.escalated", reviewer, task, note=note, gold=False, new_task=senior.pk)
        )
    return senior


def _adjudication_for(decision: Decision, task: ReviewTask, note: str, now: datetime) -> ReviewTask:
    """The decision's open adjudication, with this note added (both reviewers of a
    two-reviewer decision may escalate: one senior settles it), or a new one."""
    current = (
        decision.tasks.select_for_update()
        .filter(kind=ReviewTask.Kind.ADJUDICATION, state__in=[OPEN, CLAIMED])
        .first()
    )
    if current is None:
        priority = max(task.priority, ADJUDICATION_PRIORITY)
        return _open_adjudication(decision, now, note=note, priority=priority)
    current.note = f"{current.note}\n{note}".strip()
    current.save(update_fields=["note"])
    return current


def _close_gold(task: ReviewTask, reviewer: User, note: str, now: datetime) -> ReviewTask:
    """A gold item's decision is not at stake: an adjudication on it would only jam a senior's
    queue (every answer refused as already final). The note is kept with the closed task."""
    _close(task, note, now)
    record(**_event("task.escalated", reviewer, task, note=note, gold=True))
    return task


def _close(task: ReviewTask, note: str, now: datetime) -> None:
    task.state, task.closed_at, task.note = CANCELLED, now, note
    task.save(update_fields=["state", "closed_at", "note"])


def _already_final(decision: Decision) -> ApplicationError:
    return ApplicationError(
        f"Decision {decision.pk} is already final ({decision.final_outcome}): there is nothing "
        "left for a senior reviewer to settle. Release the task or claim the next one.",
        code="already_final",
    )


def _open_adjudication(
    decision: Decision, now: datetime, *, note: str, priority: int
) -> ReviewTask:
    """A senior's task on a decision still open: on a final one every answer would be refused."""
    if decision.status == Decision.Status.FINAL:
        raise _already_final(decision)
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
        note=note,
        created_at=now,
    )


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
            _event(
                "task.expired",
                None,
                task,
                reviewer=task.assignee_id,
                lease_expired_at=_iso(task.lease_expires_at),
            )
            for task in expired
        ]
        for task in expired:
            _reopen(task)
        record_many(events)
    return len(expired)


# --- answering -----------------------------------------------------------------------------


@dataclass
class Answer:
    verdict: str
    outcome: str
    reason_code: str
    rationale: str


def _check_answer(task: ReviewTask, decision: Decision, data: dict[str, Any]) -> Answer:
    """Agree, or override with an outcome, a reason code and a rationale. A blind reviewer does
    not know the model's answer, so gives an outcome and a rationale, and the verdict follows."""
    labels = decision.model.labels
    verdict, outcome = data.get("verdict"), data.get("outcome")
    reason, rationale = (
        (data.get("reason_code") or "").strip(),
        (data.get("rationale") or "").strip(),
    )
    errors: dict[str, list[str]] = {}
    if task.blind:
        if outcome not in labels:
            errors["outcome"] = [f"give your own outcome: one of {', '.join(labels)}"]
        if not rationale:
            errors["rationale"] = ["is required in blind review: say why"]
        verdict = (
            Review.Verdict.AGREE if outcome == decision.model_outcome else Review.Verdict.OVERRIDE
        )
        reason = reason or ("" if verdict == Review.Verdict.AGREE else "other")
    elif verdict == Review.Verdict.AGREE:
        outcome = decision.model_outcome
    elif verdict == Review.Verdict.OVERRIDE:
        if outcome not in labels:
            errors["outcome"] = [f"must be one of {', '.join(labels)}"]
        elif outcome == decision.model_outcome:
            errors["outcome"] = [
                f"the model already said {outcome}: that is agreeing, not overriding"
            ]
        if not rationale:
            errors["rationale"] = ["is required when overriding: say why the model is wrong"]
    else:
        errors["verdict"] = ['must be "agree" or "override"']
    codes = settings.REVIEW_REASON_CODES
    if verdict == Review.Verdict.OVERRIDE and reason not in codes:
        errors["reason_code"] = [f"must be one of {', '.join(codes)}"]
    if len(rationale) > 5000:
        errors["rationale"] = ["must be at most 5000 characters"]
    if errors:
        raise invalid(errors)
    return Answer(verdict, outcome, reason if verdict == Review.Verdict.OVERRIDE else "", rationale)


def review_submit(*, task_id: int, reviewer: User, data: dict[str, Any]) -> Review:
    """Record the reviewer's answer; settle the decision when the answer settles it."""
    now = timezone.now()
    with transaction.atomic():
        decision = _lock_decision(task_id)  # the decision first, then the task (see there)
        task = _held(task_id, reviewer, now)
        answer = _check_answer(task, decision, data)
        review = _store_review(task, decision, answer, reviewer, now)
        task.state, task.closed_at = DONE, now
        task.save(update_fields=["state", "closed_at"])
        events = [
            _event(
                "review.submitted",
                reviewer,
                task,
                review=review.pk,
                verdict=review.verdict,
                outcome=review.outcome,
                agrees_with_model=review.agrees_with_model,
                reason_code=review.reason_code,
                rationale=review.rationale,
                seconds_spent=review.seconds_spent,
                model_hidden=review.model_hidden,
                gold=review.is_gold,
            )
        ]
        if not task.is_gold:
            events += _settle(decision, task, review, now)
        record_many(events)
    return review


def _store_review(
    task: ReviewTask, decision: Decision, answer: Answer, reviewer: User, now: datetime
) -> Review:
    gold = GoldLabel.objects.filter(decision=decision).first() if task.is_gold else None
    return Review.objects.create(
        task=task,
        decision=decision,
        reviewer=reviewer,
        kind=task.kind,
        verdict=answer.verdict,
        outcome=answer.outcome,
        agrees_with_model=answer.outcome == decision.model_outcome,
        reason_code=answer.reason_code,
        rationale=answer.rationale,
        seconds_spent=round((now - task.claimed_at).total_seconds(), 3),
        model_hidden=task.blind,
        is_gold=task.is_gold,
        gold_correct=(answer.outcome == gold.outcome) if gold else None,
        created_at=now,
    )


def _settle(decision: Decision, task: ReviewTask, review: Review, now: datetime) -> list[dict]:
    """After a review: finalize, open an adjudication, or wait for the other reviewer."""
    K, By = ReviewTask.Kind, Decision.FinalizedBy
    tasks = list(decision.tasks.filter(is_gold=False).only("kind", "state"))  # read once
    if task.kind in (K.ADJUDICATION, K.APPEAL):
        by = By.ADJUDICATOR if task.kind == K.ADJUDICATION else By.APPEAL
        return _finalize(decision, review, by, now, tasks)
    if any(t.kind == K.ADJUDICATION and t.state in (OPEN, CLAIMED) for t in tasks):
        # Someone escalated, or the reviewers already disagreed: a senior settles it. This
        # answer is on record for them, and never overrules them.
        return []
    sibling_kind = K.SECOND_OPINION if task.kind == K.INITIAL else K.INITIAL
    siblings = [t.pk for t in tasks if t.kind == sibling_kind and t.state != CANCELLED]
    if not siblings:
        return _finalize(decision, review, By.REVIEWER, now, tasks)
    other = Review.objects.filter(task__in=siblings).first()
    if other is None:
        return []  # two independent reviews are required; wait for the other one
    if other.outcome == review.outcome:
        return _finalize(decision, review, By.REVIEWER, now, tasks)
    adjudication = _open_adjudication(
        decision,
        now,
        priority=ADJUDICATION_PRIORITY,
        note=f"The reviewers disagree: {other.outcome} and {review.outcome}.",
    )
    return [
        _event(
            "task.opened",
            None,
            adjudication,
            reason="disagreement",
            outcomes=sorted([other.outcome, review.outcome]),
        )
    ]


def _finalize(
    decision: Decision, review: Review, by: str, now: datetime, tasks: list[ReviewTask]
) -> list[dict]:
    """Set the final outcome, once; close the decision's other open work."""
    settled = Decision.objects.filter(pk=decision.pk, finalized_at=None).update(
        status=Decision.Status.FINAL,
        final_outcome=review.outcome,
        finalized_by=by,
        finalized_by_user=review.reviewer,
        finalized_at=now,
    )
    if not settled:
        raise ApplicationError("This decision was already final; nothing was changed.")
    leftovers = [t.pk for t in tasks if t.state in (OPEN, CLAIMED) and t.pk != review.task_id]
    if leftovers:
        ReviewTask.objects.filter(pk__in=leftovers).update(state=CANCELLED, closed_at=now)
    return [
        {
            "action": "decision.finalized",
            "actor": review.reviewer,
            "obj": decision,
            "payload": {
                "final_outcome": review.outcome,
                "model_outcome": decision.model_outcome,
                "overridden": review.outcome != decision.model_outcome,
                "finalized_by": by,
                "review": review.pk,
                "cancelled_tasks": leftovers,
            },
        }
    ]


# --- known-answer checks --------------------------------------------------------------------


def gold_mark(
    *, decision: Decision, outcome: str, actor: User, copies: int = 1, note: str = ""
) -> GoldLabel:
    """Mark a decision's known correct outcome and serve it to `copies` reviewers as an ordinary
    looking task. Only the owner of the decision's model may."""
    if decision.model.owner_id != actor.pk:
        raise ApplicationError(
            f"Only the owner of {decision.model.name} marks its gold items.", status=403
        )
    errors = {}
    if outcome not in decision.model.labels:
        errors["outcome"] = [f"must be one of {', '.join(decision.model.labels)}"]
    if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= 20:
        errors["copies"] = ["must be a whole number from 1 to 20 (reviewers to check)"]
    if errors:
        raise invalid(errors)
    try:
        with transaction.atomic():
            return _mark_gold(decision, outcome, actor, copies, note)
    except IntegrityError:
        # Another request marked it between our check and our insert (the label is unique).
        raise _already_gold() from None


def _already_gold() -> ApplicationError:
    return ApplicationError("This decision is already a gold item.", code="already_gold")


def _is_gold_item(decision: Decision) -> bool:
    return GoldLabel.objects.filter(decision=decision).exists()


def _mark_gold(decision: Decision, outcome: str, actor: User, copies: int, note: str) -> GoldLabel:
    now = timezone.now()
    # The decision first, as everywhere: two owners marking it at once take turns here.
    Decision.objects.select_for_update().filter(pk=decision.pk).values_list("pk").get()
    if _is_gold_item(decision):
        raise _already_gold()
    gold = GoldLabel.objects.create(
        decision=decision, outcome=outcome, note=note, created_by=actor, created_at=now
    )
    policy = decision.model.policies.order_by("-version").first()
    tasks = ReviewTask.objects.bulk_create(
        ReviewTask(
            decision=decision,
            model_id=decision.model_id,
            kind=ReviewTask.Kind.INITIAL,
            is_gold=True,
            blind=policy.blind_review,
            priority=GOLD_PRIORITY,
            created_at=now,
            due_at=now + timedelta(hours=policy.sla_hours),
        )
        for _ in range(copies)
    )
    record(
        action="gold.marked",
        actor=actor,
        obj=decision,
        payload={"outcome": outcome, "copies": copies, "tasks": [t.pk for t in tasks]},
    )
    return gold
