"""Known-answer (gold) checks: a decision whose correct outcome is known is served to
reviewers like any task, and their answers are compared with it."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import record
from core.errors import ApplicationError, invalid
from models_registry.selectors import current_policy
from reviews.models import Decision, GoldLabel, ReviewTask
from reviews.services.common import GOLD_PRIORITY


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
    policy = current_policy(decision.model)
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
