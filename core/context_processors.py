from __future__ import annotations

from django.http import HttpRequest

from core.roles import roles_of


def roles(request: HttpRequest) -> dict:
    return {"user_roles": roles_of(getattr(request, "user", None))}
