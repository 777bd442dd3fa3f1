"""Role checks for pages and API views. Object checks live with each view's queryset."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

from core.roles import has_role


def role_required(*roles: str) -> Callable:
    """Page decorator: anonymous visitors go to the login page, others without a role get 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, *roles):
                raise PermissionDenied(f"This page needs the role {' or '.join(roles)}.")
            return view(request, *args, **kwargs)

        wrapper.required_roles = roles
        return wrapper

    return decorator


def role_permission(*roles: str) -> type[BasePermission]:
    """A DRF permission class admitting authenticated users that hold any of `roles`."""

    class HasRole(BasePermission):
        message = f"This endpoint needs the role {' or '.join(roles)}."

        def has_permission(self, request, view) -> bool:
            return bool(request.user and request.user.is_authenticated) and has_role(
                request.user, *roles
            )

    HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return HasRole
