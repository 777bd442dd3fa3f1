"""Read paths of the oversight app."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from core import roles as r
from oversight.models import Export


def exports_visible_to(user: User) -> QuerySet[Export]:
    """Auditors see every export; anyone else only their own."""
    if r.has_role(user, r.AUDITOR):
        return Export.objects.all()
    return Export.objects.filter(requested_by=user)
