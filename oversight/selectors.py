"""Read paths of the oversight app."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from core import roles as r
from models_registry.models import MLModel
from oversight.models import Export


def exports_visible_to(user: User) -> QuerySet[Export]:
    """Auditors see every export; anyone else only their own."""
    if r.has_role(user, r.AUDITOR):
        return Export.objects.all()
    return Export.objects.filter(requested_by=user)


# --- group reports ------------------------------------------------------------------------------

# Who reads group reports: auditors (everything), senior reviewers (every model) and model
# owners (their own models), the last two without the counts of small groups. Reviewers do not
# (they would learn how their own answers split by group, which blind review hides), and
# neither do model services: group figures are for the people accountable for oversight.
REPORT_ROLES = (r.AUDITOR, r.SENIOR_REVIEWER, r.MODEL_OWNER)


def reportable_models(user: User) -> QuerySet[MLModel]:
    """The models whose group reports the user may read."""
    if r.has_role(user, r.AUDITOR, r.SENIOR_REVIEWER):
        return MLModel.objects.all()
    if r.has_role(user, r.MODEL_OWNER):
        return MLModel.objects.filter(owner=user)
    return MLModel.objects.none()


def sees_small_groups(user: User) -> bool:
    """Counts of groups below REPORT_MIN_CELL are for auditors only."""
    return r.has_role(user, r.AUDITOR)


def may_reset_breaker(user: User, model: MLModel) -> bool:
    """The model's owner, or a senior reviewer."""
    if r.has_role(user, r.SENIOR_REVIEWER):
        return True
    return r.has_role(user, r.MODEL_OWNER) and model.owner_id == user.pk
