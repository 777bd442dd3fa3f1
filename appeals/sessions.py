"""The person's portal session: scoped to one decision, ended after PORTAL_IDLE_MINUTES
without a request, when the access code it was opened with is replaced or expires, and when
the person signs out. Kept in Django's session (the database by default) under one key, apart
from any staff login in the same browser."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from appeals.models import DecisionAccess
from appeals.services import portal_signed_out

KEY = "oversight_portal"


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind PORTAL_TRUSTED_PROXY_HOPS proxies of ours,
    the X-Forwarded-For entry the outermost of them added (entries left of it are the
    client's to forge)."""
    hops = settings.PORTAL_TRUSTED_PROXY_HOPS
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [p for p in forwarded if p]
    if hops > 0 and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def start(request: HttpRequest, access: DecisionAccess) -> None:
    request.session.cycle_key()  # a new session id at sign-in: no fixation
    request.session[KEY] = {
        "access": access.pk,
        "decision": access.decision_id,
        "code_issued_at": access.code_issued_at.isoformat(),
        "seen": time.time(),
    }


def current(request: HttpRequest) -> tuple[DecisionAccess | None, str]:
    """(the signed-in person's access row, "") or (None, why: "none", "idle", "code_replaced")."""
    data = request.session.get(KEY)
    if not isinstance(data, dict):
        return None, "none"
    access = (
        DecisionAccess.objects.select_related("decision__model")
        .filter(pk=data.get("access"), decision_id=data.get("decision"))
        .first()
    )
    why = ""
    if access is None:
        why = "none"
    elif time.time() - data.get("seen", 0) > settings.PORTAL_IDLE_MINUTES * 60:
        why = "idle"
    elif access.code_issued_at is None or access.code_issued_at.isoformat() != data.get(
        "code_issued_at"
    ):
        why = "code_replaced"
    elif access.code_expires_at and access.code_expires_at <= timezone.now():
        why = "code_expired"
    if why:
        end(request, access, why)
        return None, why
    data["seen"] = time.time()
    request.session[KEY] = data
    return access, ""


def end(request: HttpRequest, access: DecisionAccess | None, why: str) -> None:
    request.session.pop(KEY, None)
    request.session.cycle_key()
    if access is not None:
        portal_signed_out(access=access, why=why)
