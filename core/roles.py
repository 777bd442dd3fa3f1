"""Roles are Django groups. A person's roles decide which pages and endpoints they may use."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group

REVIEWER = "reviewer"
SENIOR_REVIEWER = "senior_reviewer"
AUDITOR = "auditor"
MODEL_OWNER = "model_owner"
MODEL_SERVICE = "model_service"

ALL_ROLES = (REVIEWER, SENIOR_REVIEWER, AUDITOR, MODEL_OWNER, MODEL_SERVICE)
STAFF_ROLES = (REVIEWER, SENIOR_REVIEWER, AUDITOR, MODEL_OWNER)

# A senior reviewer works the ordinary queue too; nothing else is implied.
IMPLIED = {SENIOR_REVIEWER: (REVIEWER,)}

DESCRIPTIONS = {
    REVIEWER: "Works the review queue: confirms or overrides routed decisions.",
    SENIOR_REVIEWER: "Reviews, adjudicates disagreements and escalations, decides appeals.",
    AUDITOR: "Reads everything, verifies the audit trail, exports the decision log.",
    MODEL_OWNER: "Registers models and versions, edits routing policies, promotes champions.",
    MODEL_SERVICE: "An API client (a model service) that registers models and sends predictions.",
}


def roles_of(user: AbstractBaseUser | AnonymousUser | None) -> frozenset[str]:
    """The user's roles, implied ones included; cached on the user object for the request."""
    if user is None or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_oversight_roles", None)
    if cached is None:
        names = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        for name in list(names):
            names.update(IMPLIED.get(name, ()))
        cached = frozenset(names)
        user._oversight_roles = cached
    return cached


def has_role(user: AbstractBaseUser | AnonymousUser | None, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def groups(*names: str) -> list[Group]:
    """The groups of these roles (created by a migration; made here if a flush removed them)."""
    return [Group.objects.get_or_create(name=name)[0] for name in names]


def forget_roles(user: AbstractBaseUser) -> None:
    """Drop the cached roles after a grant or revoke on this very object."""
    if hasattr(user, "_oversight_roles"):
        del user._oversight_roles
