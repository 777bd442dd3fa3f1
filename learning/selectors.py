"""Read paths of the label loop, with who may read what."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from core import roles as r
from learning.models import (
    Evaluation,
    LabelRecord,
    RetrainingRun,
    ShadowScore,
    TrainingExample,
    Webhook,
    outbox_scope,
)
from models_registry.models import MLModel, ModelVersion
from outbox.models import Message

KINDS = ("label", "webhook")


def models_with_labels_for(user: User) -> QuerySet[MLModel]:
    """Whose labels a caller may read: a model's services, its owner, and auditors."""
    user_roles = r.roles_of(user)
    if r.AUDITOR in user_roles:
        return MLModel.objects.all()
    allowed = Q(pk__in=[])
    if r.MODEL_OWNER in user_roles:
        allowed |= Q(owner=user)
    if r.MODEL_SERVICE in user_roles:
        allowed |= Q(pk__in=MLModel.objects.filter(services=user).values("pk"))
    return MLModel.objects.filter(allowed)


def is_owner(user: User, model: MLModel) -> bool:
    return model.owner_id == user.pk and r.has_role(user, r.MODEL_OWNER)


def examples(
    model: MLModel, *, since: datetime | None = None, source: str | None = None
) -> QuerySet[TrainingExample]:
    """The model's training store, oldest first; `since` is on the time a label was stored
    (what a service polling with its last time has not seen yet, late deliveries included)."""
    rows = TrainingExample.objects.filter(model=model)
    if since is not None:
        rows = rows.filter(stored_at__gte=since)
    if source:
        rows = rows.filter(source=source)
    return rows


# --- the owner's learning page ------------------------------------------------------------------


def labels_by_day(model: MLModel, *, days: int = 30) -> list[dict]:
    """Labels per day and source over the last `days` days (zeros included)."""
    start = (timezone.now() - timedelta(days=days - 1)).date()
    counts = (
        LabelRecord.objects.filter(model=model, at__date__gte=start)
        .annotate(day=TruncDate("at"))
        .values("day", "source")
        .annotate(n=Count("pk"))
    )
    table: dict = defaultdict(dict)
    for row in counts:
        table[row["day"]][row["source"]] = row["n"]
    return [
        {"day": day, **{s: table[day].get(s, 0) for s in LabelRecord.Source.values}}
        for day in (start + timedelta(days=i) for i in range(days))
    ]


def label_totals(model: MLModel) -> dict:
    labels = LabelRecord.objects.filter(model=model)
    by_source = dict(labels.values_list("source").annotate(n=Count("pk")))
    return {
        "all": sum(by_source.values()),
        "by_source": by_source,
        "current": labels.filter(is_current=True).count(),
        "superseded": labels.filter(is_current=False).count(),
        "holdout": labels.filter(is_current=True, holdout=True).count(),
        "stored": TrainingExample.objects.filter(model=model).count(),
    }


def outbox_state(model: MLModel) -> list[dict]:
    counts = (
        Message.objects.filter(scope=outbox_scope(model.pk), kind__in=KINDS)
        .values("kind", "status")
        .annotate(n=Count("pk"))
    )
    table: dict = defaultdict(dict)
    for row in counts:
        table[row["kind"]][row["status"]] = row["n"]
    return [
        {"kind": kind, **{s: table[kind].get(s, 0) for s in Message.Status.values}}
        for kind in KINDS
    ]


def dead_messages(model: MLModel, *, limit: int = 50) -> QuerySet[Message]:
    return Message.objects.filter(
        scope=outbox_scope(model.pk), kind__in=KINDS, status=Message.Status.DEAD
    ).order_by("-created_at", "-pk")[:limit]


def message_of_model(model: MLModel, message_id: int) -> Message | None:
    return Message.objects.filter(
        pk=message_id, scope=outbox_scope(model.pk), kind__in=KINDS
    ).first()


def webhook_of(model: MLModel) -> Webhook | None:
    return Webhook.objects.filter(model=model, active=True).select_related("set_by").first()


def webhook_deliveries(model: MLModel, *, limit: int = 20) -> list[dict]:
    messages = Message.objects.filter(scope=outbox_scope(model.pk), kind="webhook").order_by(
        "-created_at", "-pk"
    )[:limit]
    return [
        {"message": m, "labels": len(m.payload.get("body", {}).get("labels", []))} for m in messages
    ]


def retraining_runs(model: MLModel, *, limit: int = 20) -> QuerySet[RetrainingRun]:
    return (
        RetrainingRun.objects.filter(model=model)
        .select_related("requested_by", "parent", "candidate", "evaluation")
        .order_by("-requested_at", "-pk")[:limit]
    )


def latest_evaluation(model: MLModel) -> Evaluation | None:
    return (
        Evaluation.objects.filter(model=model)
        .select_related("candidate", "champion")
        .order_by("-created_at", "-pk")
        .first()
    )


def shadow_candidate(model: MLModel) -> ModelVersion | None:
    """The candidate being shadow-scored: the newest candidate with shadow scores."""
    scored = ShadowScore.objects.filter(version=OuterRef("pk"))
    return (
        model.versions.filter(Exists(scored), status=ModelVersion.Status.CANDIDATE)
        .order_by("-number")
        .first()
    )


def shadow_summary(version: ModelVersion) -> dict:
    """How often the candidate agrees with the champion's outcome, and, on decisions a person
    has labelled, how often each of the two agrees with the person."""
    scores = ShadowScore.objects.filter(version=version)
    total = scores.count()
    agree = scores.filter(agrees_with_model=True).count()
    labelled = list(
        scores.filter(decision__labels__is_current=True).values_list(
            "outcome", "decision__labels__label", "decision__labels__model_outcome"
        )
    )
    return {
        "version": version,
        "scored": total,
        "agree_with_champion": agree,
        "agree_rate": agree / total if total else None,
        "labelled": len(labelled),
        "candidate_right": sum(outcome == label for outcome, label, _ in labelled),
        "champion_right": sum(model_outcome == label for _, label, model_outcome in labelled),
    }
