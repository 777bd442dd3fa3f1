"""Read paths of the reviews app, with the object-level rules of who may see what."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from core import roles as r
from models_registry.models import MLModel
from reviews.models import Decision


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
