"""People, roles and service tokens. Each change is audited."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import record
from audit.log import Actor
from core import roles as r
from core.errors import ApplicationError
from core.models import ServiceToken
from core.tokens import digest, new_token

SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")


def user_create(
    *, username: str, password: str | None, roles: list[str], actor: Actor, email: str = ""
) -> User:
    _check_roles(roles)
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise ApplicationError(f"A user named {username!r} already exists.")
        user = User.objects.create_user(username=username, password=password, email=email)
        user.groups.set(r.groups(*roles))
        record(
            action="user.created",
            actor=actor,
            obj=user,
            payload={"username": username, "roles": sorted(roles)},
        )
    return user


def role_grant(*, user: User, role: str, actor: Actor) -> None:
    _check_roles([role])
    with transaction.atomic():
        if user.groups.filter(name=role).exists():
            return
        user.groups.add(*r.groups(role))
        r.forget_roles(user)
        record(action="role.granted", actor=actor, obj=user, payload={"role": role})


def role_revoke(*, user: User, role: str, actor: Actor) -> None:
    _check_roles([role])
    with transaction.atomic():
        if not user.groups.filter(name=role).exists():
            return
        user.groups.remove(*r.groups(role))
        r.forget_roles(user)
        record(action="role.revoked", actor=actor, obj=user, payload={"role": role})


def _check_roles(roles: list[str]) -> None:
    unknown = sorted(set(roles) - set(r.ALL_ROLES))
    if unknown:
        raise ApplicationError(
            f"Unknown role(s) {', '.join(unknown)}; roles are {', '.join(r.ALL_ROLES)}.",
            code="invalid",
            status=400,
        )


def service_token_create(*, name: str, actor: Actor) -> tuple[ServiceToken, str]:
    """Create a token for the model service `name` (and its user). Returns the token once."""
    if not SERVICE_NAME_RE.match(name):
        raise ApplicationError(
            "A service name is 2–63 lowercase letters, digits, '-' or '_'.",
            code="invalid",
            status=400,
        )
    token = new_token()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=f"svc-{name}")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(*r.groups(r.MODEL_SERVICE))
        service_token = ServiceToken.objects.create(
            user=user,
            name=name,
            prefix=token[:10],
            digest=digest(token),
            created_at=timezone.now(),
        )
        record(
            action="service_token.created",
            actor=actor,
            obj=service_token,
            payload={"name": name, "user": user.username, "prefix": service_token.prefix},
        )
    return service_token, token


def service_token_revoke(*, service_token: ServiceToken, actor: Actor) -> None:
    with transaction.atomic():
        revoked = ServiceToken.objects.filter(pk=service_token.pk, revoked_at=None).update(
            revoked_at=timezone.now()
        )
        if revoked:
            record(action="service_token.revoked", actor=actor, obj=service_token)
