"""Read paths of the reviews app, with the object-level rules of who may see what."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from core import roles as r
from models_registry.models import MLModel
from reviews.models import Decision, ReviewTask


def models_for_ingest(user: User) -> QuerySet[MLModel]:
    """A model service may send decisions only for the models it has been granted."""
    if not r.has_role(user, r.MODEL_SERVICE):
        return MLModel.objects.none()
    return MLModel.objects.filter(services=user)


def decisions_visible_to(user: User) -> QuerySet[Decision]:
    """Auditors and senior reviewers see every decision; a model owner those of the models
    they own; a model service those of the models it has been granted."""
    user_roles = r.roles_of(user)
    if {r.AUDITOR, r.SENIOR_REVIEWER} & user_roles:
        return Decision.objects.all()
    models = Q(pk__in=[])
    if r.MODEL_OWNER in user_roles:
        models |= Q(owner=user)
    if r.MODEL_SERVICE in user_roles:
        models |= Q(services=user)
    # A subquery, not a join: a join through services would repeat rows.
    return Decision.objects.filter(model__in=MLModel.objects.filter(models).values("pk"))


def may_see_groups(user: User) -> bool:
    """Protected attributes are for group reports: auditors only."""
    return r.has_role(user, r.AUDITOR)


def decisions_filtered(
    user: User,
    *,
    model: str | None = None,
    status: str | None = None,
    routed: bool | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Decision]:
    decisions = decisions_visible_to(user)
    if model:
        decisions = decisions.filter(model__name=model)
    if status:
        decisions = decisions.filter(status=status)
    if routed is not None:
        decisions = decisions.filter(routed=routed)
    if reason:
        decisions = decisions.filter(reason_tags__contains=f",{reason},")
    if since:
        decisions = decisions.filter(received_at__gte=since)
    if until:
        decisions = decisions.filter(received_at__lt=until)
    return decisions


# --- the review queue ------------------------------------------------------------------------

ELIGIBLE_SHOWN = 500

# Routing details that would give the model's answer away in blind review.
_REVEALING_FIELDS = {"outcome", "confidence"}


def blind_routing(routing: dict) -> dict:
    """The routing record without what reveals the model's outcome or confidence: the reasons,
    and the names of the high-stakes rules that fired."""
    high = next((c for c in routing.get("conditions", []) if c["name"] == "high_stakes"), None)
    rules = [rule["name"] for rule in (high or {}).get("rules", []) if rule["fired"]]
    return {"reasons": routing.get("reasons", []), "high_stakes_rules": rules}


def reveals_model(task: ReviewTask, viewer: User) -> bool:
    """Blind tasks hide the model's answer from the reviewer who holds them until they answer."""
    if not task.blind or task.state == ReviewTask.State.DONE:
        return True
    return task.assignee_id != viewer.pk


def case_data(task: ReviewTask, viewer: User) -> dict:
    """What the reviewer works from. Protected attributes are never part of it."""
    decision = task.decision
    reveal = reveals_model(task, viewer)
    data = {
        "id": decision.pk,
        "model": decision.model.name,
        "external_id": decision.external_id,
        "subject_ref": decision.subject_ref,
        "received_at": decision.received_at,
        "features": decision.features,
        "routing": decision.routing if reveal else blind_routing(decision.routing),
        "model_hidden": not reveal,
    }
    if reveal:
        data.update(
            model_version=decision.model_version.number if decision.model_version else None,
            model_outcome=decision.model_outcome,
            confidence=decision.confidence,
            probabilities=decision.probabilities,
            explanation=decision.explanation,
        )
    return data


def task_data(task: ReviewTask, viewer: User) -> dict:
    return {
        "id": task.pk,
        "kind": task.kind,
        "state": task.state,
        "priority": task.priority,
        "due_at": task.due_at,
        "claimed_at": task.claimed_at,
        "lease_expires_at": task.lease_expires_at,
        "blind": task.blind,
        "note": task.note,
        "assignee": task.assignee.username if task.assignee_id else None,
        "decision": case_data(task, viewer),
    }


def task_for(viewer: User, task_id: int) -> ReviewTask | None:
    """A task the viewer may open: one they hold or held, or any for seniors and auditors."""
    tasks = ReviewTask.objects.select_related(
        "decision__model", "decision__model_version", "assignee"
    ).defer("decision__model_version__artifact")
    if not r.has_role(viewer, r.SENIOR_REVIEWER, r.AUDITOR):
        tasks = tasks.filter(assignee=viewer)
    return tasks.filter(pk=task_id).first()


def queue_summary(viewer: User) -> dict:
    from django.db.models import Count, Q
    from django.utils import timezone

    from reviews.services.queue import eligible_tasks

    now = timezone.now()
    open_tasks = ReviewTask.objects.filter(state=ReviewTask.State.OPEN)
    by_model_kind = (
        open_tasks.values("model_id", "kind")
        .annotate(open=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)))
        .order_by("model_id", "kind")
    )
    names = dict(MLModel.objects.values_list("id", "name"))
    # Counting every task a reviewer may take means testing each against their history;
    # "more than enough" is all the page needs to say.
    eligible = eligible_tasks(viewer)[: ELIGIBLE_SHOWN + 1].count()
    return {
        "counts": [
            {
                "model": names.get(row["model_id"]),
                "kind": row["kind"],
                "open": row["open"],
                "overdue": row["overdue"],
            }
            for row in by_model_kind
        ],
        "eligible": eligible,
        "eligible_text": f"{ELIGIBLE_SHOWN:,}+" if eligible > ELIGIBLE_SHOWN else f"{eligible:,}",
        "my_claims": list(
            ReviewTask.objects.filter(state=ReviewTask.State.CLAIMED, assignee=viewer)
            .select_related("model")
            .order_by("lease_expires_at")
        ),
        "overdue": list(
            open_tasks.filter(due_at__lt=now).select_related("model").order_by("due_at")[:20]
        ),
        "overdue_count": open_tasks.filter(due_at__lt=now).count(),
    }


def decision_history(decision: Decision) -> list:
    from audit.models import AuditEvent

    # Reads (*.viewed) are for auditors; the reviewer's history shows what happened to the case.
    events = AuditEvent.objects.filter(object_type="decision", object_id=str(decision.pk))
    return list(events.exclude(action__endswith=".viewed").order_by("seq"))
