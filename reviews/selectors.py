"""Read paths of the reviews app, with the object-level rules of who may see what."""

from __future__ import annotations

import json
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
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

# Rule fields that would give the model's answer away in blind review.
_REVEALING_FIELDS = {"outcome", "confidence"}
# What the model said, hidden from whoever holds an unanswered blind task on the decision.
MODEL_FIELDS = (
    "model_outcome",
    "confidence",
    "probabilities",
    "margin",
    "explanation",
    "final_outcome",
)


def blind_routing(routing: dict) -> dict:
    """The routing record without what reveals the model's outcome or confidence: the reasons,
    and the names of the high-stakes rules that fired, except rules on the outcome or the
    confidence (that such a rule fired says what the model answered)."""
    high = next((c for c in routing.get("conditions", []) if c["name"] == "high_stakes"), None)
    fired = [rule for rule in (high or {}).get("rules", []) if rule["fired"]]
    rules = [rule["name"] for rule in fired if not _tests_the_answer(rule)]
    reasons = routing.get("reasons", [])
    if fired and not rules:
        # Only rules on the answer fired: that the case is high-stakes would say what it is.
        reasons = [reason for reason in reasons if reason != "high_stakes"]
    return {"reasons": reasons, "high_stakes_rules": rules}


def _tests_the_answer(rule: dict) -> bool:
    return any(c.get("field") in _REVEALING_FIELDS for c in rule.get("conditions", []))


def reveals_model(task: ReviewTask, viewer: User) -> bool:
    """Whoever holds an unanswered blind task on a decision sees nothing of the model's answer
    to it, through whichever task (their own, a sibling) or endpoint they look."""
    if task.assignee_id == viewer.pk:
        # A reviewer holds at most one task per decision (a database constraint): this one.
        return not (task.blind and task.state == ReviewTask.State.CLAIMED)
    return task.decision_id not in decisions_hidden_from(viewer, [task.decision_id])


def decisions_hidden_from(viewer: User, decision_ids: list[int]) -> set[int]:
    """Of these decisions, those whose model answer the viewer may not see now (one query).

    A reviewer (senior or not) sees nothing of the model's answer on a decision that awaits
    blind review while they may still be given that review: they hold its blind task, or they
    have no task of their own on it yet (a senior reads every decision; peeking first and
    claiming after would defeat blind review). Once they answered, or hold a task that is not
    blind (an adjudication), they see it. Auditors and model owners are not blinded."""
    if not r.has_role(viewer, r.REVIEWER) or not decision_ids:
        return set()
    State = ReviewTask.State
    awaiting = ReviewTask.objects.filter(
        decision_id__in=decision_ids, blind=True, state__in=[State.OPEN, State.CLAIMED]
    )
    past_blind = ReviewTask.objects.filter(
        decision_id=OuterRef("decision_id"), assignee_id=viewer.pk
    ).exclude(blind=True, state=State.CLAIMED)
    hidden = awaiting.exclude(Exists(past_blind))
    return set(hidden.values_list("decision_id", flat=True))


def without_model(data: dict) -> dict:
    """A serialized decision with the model's answer taken out (blind review)."""
    shown = {key: value for key, value in data.items() if key not in MODEL_FIELDS}
    return {**shown, "routing": blind_routing(data.get("routing") or {}), "model_hidden": True}


def shown_routing(task: ReviewTask, reveal: bool) -> dict:
    """The routing the reviewer sees. The random audit's draw and rate are left out (they are
    for auditors, and would tell a known-answer check from a real sample); a known-answer
    check on a decision nobody had to look at is shown as what it poses as: an audit sample."""
    routing = task.decision.routing if reveal else blind_routing(task.decision.routing)
    if "conditions" in routing:
        routing = {**routing, "conditions": [_without_draw(c) for c in routing["conditions"]]}
    if task.is_gold and not routing.get("reasons"):
        return _as_audit_sample(routing)
    return routing


def _without_draw(condition: dict) -> dict:
    if condition.get("name") != "random_audit":
        return condition
    return {k: v for k, v in condition.items() if k not in ("draw", "rate")}


def _as_audit_sample(routing: dict) -> dict:
    shown = {**routing, "reasons": ["random_audit"]}
    if "conditions" in routing:
        shown["conditions"] = [
            {**c, "fired": c.get("name") == "random_audit"} for c in routing["conditions"]
        ]
    return shown


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
        "routing": shown_routing(task, reveal),
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


def _tasks_with_case() -> QuerySet[ReviewTask]:
    return ReviewTask.objects.select_related(
        "model", "decision__model", "decision__model_version", "assignee"
    ).defer("decision__model_version__artifact")


def task_for(viewer: User, task_id: int) -> ReviewTask | None:
    """A task the viewer may open: one they hold or held, or any for seniors and auditors."""
    tasks = _tasks_with_case()
    if not r.has_role(viewer, r.SENIOR_REVIEWER, r.AUDITOR):
        tasks = tasks.filter(assignee=viewer)
    return tasks.filter(pk=task_id).first()


def my_claims(viewer: User) -> QuerySet[ReviewTask]:
    """The tasks the viewer holds now, with all a case needs (no query per task)."""
    claims = _tasks_with_case().filter(state=ReviewTask.State.CLAIMED, assignee=viewer)
    return claims.order_by("lease_expires_at")


OVERDUE_SHOWN = 20


def eligible_tasks(
    reviewer: User, *, model: str | None = None, kind: str | None = None
) -> QuerySet[ReviewTask]:
    """Open tasks this reviewer may take, next first: highest priority, then earliest due."""
    tasks = ReviewTask.objects.filter(state=ReviewTask.State.OPEN)
    if not r.has_role(reviewer, r.SENIOR_REVIEWER):
        tasks = tasks.filter(senior_only=False)
    if model:
        tasks = tasks.filter(model__name=model)
    if kind:
        tasks = tasks.filter(kind=kind)
    involved = ReviewTask.objects.filter(decision_id=OuterRef("decision_id"), assignee=reviewer)
    return tasks.exclude(Exists(involved)).order_by("-priority", "due_at", "id")


def queue_summary(viewer: User) -> dict:
    now = timezone.now()
    # Counting every task a reviewer may take means testing each against their history;
    # "more than enough" is all the page needs to say.
    eligible = eligible_tasks(viewer)[: ELIGIBLE_SHOWN + 1].count()
    overdue, overdue_count = _overdue(now)
    return {
        "counts": _counts(now),
        "eligible": eligible,
        "eligible_text": f"{ELIGIBLE_SHOWN:,}+" if eligible > ELIGIBLE_SHOWN else f"{eligible:,}",
        "my_claims": list(my_claims(viewer)),
        "overdue": overdue,
        "overdue_count": overdue_count,
    }


def _late(state: str, now: datetime) -> QuerySet[ReviewTask]:
    return ReviewTask.objects.filter(state=state, due_at__lt=now)


def _counts(now: datetime) -> list[dict]:
    """Open and overdue tasks per model and kind; overdue counts tasks still waiting and tasks
    claimed but not answered by their due time. Two queries, each on a partial index."""
    rows: dict[tuple[int, str], dict] = {}
    waiting = (
        ReviewTask.objects.filter(state=ReviewTask.State.OPEN)
        .values("model_id", "kind")
        .annotate(open=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)))
    )
    for row in waiting:
        rows[row["model_id"], row["kind"]] = {"open": row["open"], "overdue": row["overdue"]}
    late_claims = _late(ReviewTask.State.CLAIMED, now).values("model_id", "kind")
    for row in late_claims.annotate(n=Count("id")):
        rows.setdefault((row["model_id"], row["kind"]), {"open": 0, "overdue": 0})
        rows[row["model_id"], row["kind"]]["overdue"] += row["n"]
    names = dict(MLModel.objects.values_list("id", "name"))
    return [
        {"model": names.get(model_id), "kind": kind, **row}
        for (model_id, kind), row in sorted(rows.items())
    ]


def _overdue(now: datetime) -> tuple[list[ReviewTask], int]:
    """The most overdue tasks, waiting or claimed, and how many there are."""
    shown, count = [], 0
    for state in (ReviewTask.State.OPEN, ReviewTask.State.CLAIMED):
        late = _late(state, now)
        shown += late.select_related("model", "assignee").order_by("due_at")[:OVERDUE_SHOWN]
        count += late.count()
    return sorted(shown, key=lambda task: task.due_at)[:OVERDUE_SHOWN], count


def decision_history(decision: Decision) -> list:
    # Reads (*.viewed) are for auditors; the reviewer's history shows what happened to the case.
    events = AuditEvent.objects.filter(object_type="decision", object_id=str(decision.pk))
    # In the order they were recorded, sealed or still staged (audit.sealer).
    return list(events.exclude(action__endswith=".viewed").order_by("id"))


def case_history(task: ReviewTask) -> list:
    """The history shown on a case page. A known-answer check shows what an ordinary audit
    sample's would: the decision's arrival and this task's own events, nothing of the
    decision's settlement, its marking as gold or the other copies served."""
    events = decision_history(task.decision)
    if not task.is_gold:
        return events
    return [e for e in events if e.action == "decision.ingested" or _task_of(e) == task.pk]


def _task_of(event) -> int | None:
    return json.loads(event.payload).get("task")
