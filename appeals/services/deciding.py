"""Deciding an appeal: only the senior who holds its task, who took no part in the decision,
upholds it or overturns it, with reasons for the person. Nothing decides an appeal on its
own: there is no timer, rule or task that resolves one."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from appeals import emails
from appeals.models import Appeal
from audit import record_many
from core import roles as r
from core.errors import ApplicationError, forbidden, invalid, not_found
from reviews import hooks
from reviews.selectors import took_part
from reviews.services.appeal_work import appeal_task_done, decision_outcome_by_appeal
from reviews.services.common import held, lock_decision

RESULTS = (Appeal.Status.UPHELD, Appeal.Status.OVERTURNED)
REASONS_MAX = 5000
TOOK_PART = (
    "You took part in this decision: an appeal of it is not yours to decide. Release the task."
)


def _check(result: str, reasons: str) -> str:
    errors = {}
    if result not in RESULTS:
        errors["result"] = ['must be "upheld" (the decision stands) or "overturned"']
    reasons = reasons.strip() if isinstance(reasons, str) else ""
    if not reasons:
        errors["reasons"] = ["are required: the person reads them, so say why, plainly"]
    elif len(reasons) > REASONS_MAX:
        errors["reasons"] = [f"must be at most {REASONS_MAX:,} characters"]
    if errors:
        raise invalid(errors)
    return reasons


def _check_outcome(appeal: Appeal, result: str, outcome: str | None) -> None:
    decision = appeal.decision
    if result == Appeal.Status.UPHELD:
        if outcome not in (None, "", decision.final_outcome):
            keeps = f"upholding keeps {decision.final_outcome}: leave it out, or overturn"
            raise invalid({"outcome": [keeps]})
        return
    labels = decision.model.labels
    if outcome not in labels:
        raise invalid({"outcome": [f"the new outcome is required: one of {', '.join(labels)}"]})
    if outcome == decision.final_outcome:
        raise invalid({"outcome": [f"is the outcome appealed ({outcome}): that is upholding"]})


def appeal_resolve(
    *, appeal_id: int, senior: User, result: str, reasons: str, outcome: str | None = None
) -> Appeal:
    """Uphold or overturn (with the new `outcome`) the appeal whose task the senior holds.
    Overturning sets the decision's final outcome (finalized_by "appeal"); either result is
    audited, settles the decision for the apps that listen (labels), is shown on the portal
    and e-mailed to the person when they gave an address."""
    reasons = _check(result, reasons)
    task_id = Appeal.objects.filter(pk=appeal_id).values_list("task_id", flat=True).first()
    if task_id is None:
        raise not_found("No such appeal.")
    now = timezone.now()
    with transaction.atomic():
        decision = lock_decision(task_id)  # the decision first, then the task, then the appeal
        task = held(task_id, senior, now)
        if not r.has_role(senior, r.SENIOR_REVIEWER):
            raise forbidden("Appeals are decided by senior reviewers.")
        appeal = (
            Appeal.objects.select_for_update(of=("self",))
            .select_related("decision__access")
            .get(pk=appeal_id)
        )
        appeal.decision = decision
        if not appeal.is_open:
            raise ApplicationError(f"This appeal is {appeal.status} already.", code="appeal_closed")
        if took_part(decision.pk, senior, besides=task.pk):
            # The claim never gives it to them (reviews.selectors.eligible_tasks and the
            # database); checked again where the result is made.
            raise forbidden(TOOK_PART)
        _check_outcome(appeal, result, outcome)
        events = [_decided_event(appeal, senior, result, reasons, outcome)]
        if result == Appeal.Status.OVERTURNED:
            changed = decision_outcome_by_appeal(
                decision=decision, outcome=outcome, by=senior, now=now, appeal_id=appeal.pk
            )
            events.append(changed)
        appeal_task_done(task=task, now=now)
        appeal.status, appeal.reasons, appeal.outcome_after = (
            result,
            reasons,
            decision.final_outcome,
        )
        appeal.decided_by, appeal.decided_at = senior, now
        appeal.save(
            update_fields=["status", "reasons", "outcome_after", "decided_by", "decided_at"]
        )
        record_many(events)
        hooks.settled(
            hooks.Settlement(
                decision=decision,
                outcome=decision.final_outcome,
                source="appeal",
                by=senior,
                at=now,
                appeal_id=appeal.pk,
                appeal_result=result,
            )
        )
        emails.decided(appeal)
    return appeal


def _decided_event(appeal: Appeal, senior: User, result: str, reasons: str, outcome) -> dict:
    return {
        "action": "appeal.decided",
        "actor": senior,
        "object_type": "decision",
        "object_id": appeal.decision_id,
        "payload": {
            "appeal": appeal.pk,
            "task": appeal.task_id,
            "result": result,
            "outcome_appealed": appeal.outcome_before,
            "final_outcome": outcome
            if result == Appeal.Status.OVERTURNED
            else appeal.outcome_before,
            "reasons": reasons,
            "overdue": appeal.due_at < timezone.now(),
        },
    }
