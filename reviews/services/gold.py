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
from reviews import routing
from reviews.models import Decision, GoldLabel, ReviewTask
from reviews.selectors import gold_pose


def gold_mark(
    *, decision: Decision, outcome: str, actor: User, copies: int = 1, note: str = ""
) -> GoldLabel:
    """Mark a decision's known correct outcome and serve it to `copies` reviewers as an ordinary
    looking task. Only the owner of the decision's model may, and only once it is final (its
    copies would otherwise sit beside its own tasks, and be settled with them).

    The copies pose as the tasks of an ordinary decision awaiting review: the reasons they show
    (GoldLabel.pose_tags, reviews.selectors.gold_pose), the priority those reasons give, and
    the kinds the policy's tasks have (initial, and second_opinion when two reviewers are
    required); whoever may be served one sees the decision so too (reviews.selectors)."""
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


def _not_final(decision: Decision) -> ApplicationError:
    return ApplicationError(
        f"Decision {decision.pk} is still awaiting review: a known answer is marked on a final "
        "decision (its copies would otherwise sit beside its own tasks). Mark it once it is "
        "final.",
        code="not_final",
    )


def _is_gold_item(decision: Decision) -> bool:
    return GoldLabel.objects.filter(decision=decision).exists()


def _mark_gold(decision: Decision, outcome: str, actor: User, copies: int, note: str) -> GoldLabel:
    now = timezone.now()
    # The decision first, as everywhere: two owners marking it at once take turns here.
    status = Decision.objects.select_for_update().filter(pk=decision.pk).values_list("status")
    if status.get()[0] != Decision.Status.FINAL:
        raise _not_final(decision)
    if _is_gold_item(decision):
        raise _already_gold()
    policy = current_policy(decision.model)
    pose = gold_pose(decision, blind=policy.blind_review, review_all=policy.review_all)
    gold = GoldLabel.objects.create(
        decision=decision,
        outcome=outcome,
        note=note,
        pose_tags=routing.tags(pose),
        created_by=actor,
        created_at=now,
    )
    kinds = [ReviewTask.Kind.INITIAL]
    if policy.reviewers_required == 2:
        kinds.append(ReviewTask.Kind.SECOND_OPINION)
    tasks = ReviewTask.objects.bulk_create(
        ReviewTask(
            decision=decision,
            model_id=decision.model_id,
            kind=kinds[n % len(kinds)],
            is_gold=True,
            blind=policy.blind_review,
            priority=routing.priority_of(pose),
            created_at=now,
            due_at=now + timedelta(hours=policy.sla_hours),
        )
        for n in range(copies)
    )
    record(
        action="gold.marked",
        actor=actor,
        obj=decision,
        payload={"outcome": outcome, "copies": copies, "tasks": [t.pk for t in tasks]},
    )
    return gold
