"""API authentication for model services: `Authorization: Token <token>` (or `Bearer`)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core import throttling
from core.models import ServiceToken
from core.tokens import digest

# Recording every use would turn each read into a write; once in a while is enough to show
# which tokens are still in use.
LAST_USED_RESOLUTION = timedelta(minutes=5)


class ServiceTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request: Request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower().decode(errors="replace") not in self.keywords:
            return None
        throttling.guessing_stopped(request)
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Token <token>'.")
        try:
            token = parts[1].decode()
        except UnicodeDecodeError:
            throttling.bad_token_seen(request)
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        service_token = (
            ServiceToken.objects.select_related("user").filter(digest=digest(token)).first()
        )
        if service_token is None or service_token.revoked_at is not None:
            throttling.bad_token_seen(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if not service_token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's service is disabled.")
        _touch(service_token)
        return service_token.user, service_token

    def authenticate_header(self, request: Request) -> str:
        return "Token"


def _touch(service_token: ServiceToken) -> None:
    now = timezone.now()
    if service_token.last_used_at and now - service_token.last_used_at < LAST_USED_RESOLUTION:
        return
    ServiceToken.objects.filter(pk=service_token.pk).update(last_used_at=now)
