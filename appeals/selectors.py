"""Read paths of appeals, with who may see which."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from appeals.models import Appeal
from core import roles as r
from models_registry import scoring
from models_registry.artifacts import estimator_for
from models_registry.models import ModelVersion
from reviews.models import Decision, Review

READERS = (r.SENIOR_REVIEWER, r.AUDITOR)


def appeals_visible_to(user: User) -> QuerySet[Appeal]:
    """Seniors (who decide them) and auditors see every appeal; a model service those of its
    own models' decisions; nobody else any."""
    appeals = Appeal.objects.select_related("decision__model", "decision__access", "task")
    if r.has_role(user, *READERS):
        return appeals
    if r.has_role(user, r.MODEL_SERVICE):
        return appeals.filter(decision__model__services=user)
    return appeals.none()


def overdue_q(now: datetime) -> Q:
    return Q(status__in=Appeal.OPEN_STATUSES, due_at__lt=now)


def appeals_filtered(
    user: User,
    *,
    model: str | None = None,
    status: str | None = None,
    overdue: bool | None = None,
) -> QuerySet[Appeal]:
    appeals = appeals_visible_to(user)
    if model:
        appeals = appeals.filter(decision__model__name=model)
    if status:
        appeals = appeals.filter(status=status)
    if overdue is not None:
        late = overdue_q(timezone.now())
        appeals = appeals.filter(late) if overdue else appeals.exclude(late)
    return appeals


def may_read_attachment(user: User) -> bool:
    """Attachments go to the staff who may see every appeal: seniors and auditors."""
    return r.has_role(user, *READERS)


def reviews_of(decision: Decision) -> list[Review]:
    """Every review of the decision, gold copies aside (they did not decide it)."""
    reviews = Review.objects.filter(decision=decision, is_gold=False).select_related("reviewer")
    return list(reviews.order_by("created_at"))


def corrected_score(appeal: Appeal) -> dict | None:
    """What the model would say with the person's corrections (for the senior's information:
    it decides nothing). Scored by the version that made the decision, or by the champion
    when the service scored it itself; None when there are no corrections or no version."""
    if not appeal.corrections:
        return None
    decision = appeal.decision
    version = decision.model_version or (
        ModelVersion.objects.filter(model=decision.model, status=ModelVersion.Status.CHAMPION)
        .select_related("model")
        .first()
    )
    if version is None:
        return {"available": False, "why": "No model version can score this decision."}
    row = {**decision.features, **appeal.corrections}
    estimator = estimator_for(version)
    (score,) = scoring.score(estimator, decision.model.features, [row])
    return {
        "available": True,
        "version": version.number,
        "outcome": score.outcome,
        "confidence": score.confidence,
        "changes": score.outcome != decision.model_outcome,
    }
