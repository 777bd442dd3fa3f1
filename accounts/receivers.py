"""Failed logins and lockouts go into the audit log. Django and django-axes announce them with
signals, the only way they offer; the receivers are connected in AccountsConfig.ready()."""

from __future__ import annotations

from django.db import transaction

from audit import record


def _address(request) -> str:
    return (request.META.get("REMOTE_ADDR", "") if request is not None else "") or "unknown"


def login_failed(sender, credentials: dict, request=None, **kwargs) -> None:
    # Django passes the credentials with the password already masked; only the name is kept.
    with transaction.atomic():
        record(
            action="login.failed",
            actor="anonymous",
            object_type="user",
            object_id=str(credentials.get("username", ""))[:100],
            payload={"address": _address(request)},
        )


def locked_out(sender, request=None, username: str | None = None, ip_address=None, **kw) -> None:
    with transaction.atomic():
        record(
            action="login.locked_out",
            actor="anonymous",
            object_type="user",
            object_id=str(username or "")[:100],
            payload={"address": ip_address or _address(request)},
        )
