"""API throttles: per caller (a service token, or a person's session) and per address for
requests without credentials; and a limit on wrong tokens per address, so that tokens cannot
be guessed at speed. Counters live in the shared cache."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions, throttling
from rest_framework.request import Request

from core.models import ServiceToken


class CallerThrottle(throttling.SimpleRateThrottle):
    """One budget per service token (a service's tokens count apart), or per person."""

    scope = "caller"

    def get_cache_key(self, request: Request, view) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        if isinstance(request.auth, ServiceToken):
            ident = f"token-{request.auth.pk}"
        else:
            ident = f"user-{request.user.pk}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonThrottle(throttling.AnonRateThrottle):
    scope = "anon"


def _guess_key(address: str) -> str:
    return f"bad-token:{address}"


def bad_token_seen(request) -> None:
    """Count a wrong token from this address; 429 once there were too many this minute."""
    key = _guess_key(_address(request))
    cache.add(key, 0, timeout=60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=60)
        count = 1
    if count > settings.API_BAD_TOKENS_PER_MINUTE:
        raise exceptions.Throttled(
            wait=60, detail="Too many wrong tokens from this address; wait a minute."
        )


def guessing_stopped(request) -> None:
    """Refuse at once (429) an address that already sent too many wrong tokens this minute."""
    count = cache.get(_guess_key(_address(request))) or 0
    if count >= settings.API_BAD_TOKENS_PER_MINUTE:
        raise exceptions.Throttled(
            wait=60, detail="Too many wrong tokens from this address; wait a minute."
        )


def _address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"
