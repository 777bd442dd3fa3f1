"""Signing in to the portal with a reference and an access code, and stopping guessing.

Counters live in the database every web process shares: per reference, failures since the
last success, and a lockout after PORTAL_LOCKOUT_FAILURES of them (PORTAL_LOCKOUT_MINUTES,
doubling with each lockout in a row); per client address, PORTAL_RATE_LIMIT attempts per
PORTAL_RATE_WINDOW_MINUTES, whatever the reference. The outcome a caller may show is only
"signed in" or "not": which of the two was wrong, or that a reference exists or is locked,
is never said. Every failure, lockout and refusal is audited, never with the code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from appeals import codes
from appeals.models import DecisionAccess, SignInWindow
from audit import record

PORTAL = "portal"


@dataclass
class SignIn:
    access: DecisionAccess | None
    # "ok", or why not (for the audit trail and tests, never for the person): "rate_limited",
    # "unknown_reference", "no_code", "expired", "locked", "wrong_code".
    outcome: str

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@lru_cache(maxsize=4)
def _dummy_hash(hasher: str) -> str:
    return make_password("no-such-code")


def _spend_like_a_check(code: str, encoded: str) -> bool:
    """check_password, taking as long when there is nothing to check against (an unknown
    reference): how long a refusal takes must not say whether the reference exists."""
    if encoded:
        return check_password(code, encoded)
    check_password(code, _dummy_hash(settings.PASSWORD_HASHERS[0]))
    return False


def portal_sign_in(*, reference: str, code: str, client_address: str) -> SignIn:
    """Check a reference and access code. Returns SignIn(access, "ok") or the refusal."""
    ref, secret = codes.normalize(reference)[:32], codes.normalize(code)
    client = codes.client_key(client_address)
    now = timezone.now()
    if not _within_rate_limit(client, now):
        return _refused(None, ref, client, "rate_limited")
    access = DecisionAccess.objects.filter(reference=ref).first() if ref else None
    # The slow hash outside any lock; the counters below decide under the row lock, so that
    # guesses sent at once are still counted one by one, and none counts once locked.
    matches = _spend_like_a_check(secret, access.code_hash if access else "")
    if access is None:
        return _refused(None, ref, client, "unknown_reference")
    with transaction.atomic():
        access = DecisionAccess.objects.select_for_update().get(pk=access.pk)
        if access.locked_until and access.locked_until > now:
            return _refused(access, ref, client, "locked")
        failure = _why_not(access, matches, now)
        if failure:
            _count_failure(access, now, client)
            return _refused(access, ref, client, failure)
        access.failures, access.lockouts, access.locked_until = 0, 0, None
        access.save(update_fields=["failures", "lockouts", "locked_until"])
        record(
            action="portal.signed_in",
            actor=f"person:{access.reference}",
            object_type=PORTAL,
            object_id=access.reference,
            payload={"decision": access.decision_id, "client": client},
        )
    return SignIn(access, "ok")


def _why_not(access: DecisionAccess, matches: bool, now: datetime) -> str:
    if not access.code_hash:
        return "no_code"
    if not matches:
        return "wrong_code"
    if access.code_expires_at and access.code_expires_at <= now:
        return "expired"
    return ""


def _count_failure(access: DecisionAccess, now: datetime, client: str) -> None:
    access.failures += 1
    if access.failures >= settings.PORTAL_LOCKOUT_FAILURES:
        access.lockouts += 1
        minutes = settings.PORTAL_LOCKOUT_MINUTES * 2 ** (access.lockouts - 1)
        access.locked_until = now + timedelta(minutes=min(minutes, 60 * 24 * 30))
        access.failures = 0
        record(
            action="portal.locked",
            actor=PORTAL,
            object_type=PORTAL,
            object_id=access.reference,
            payload={
                "decision": access.decision_id,
                "lockouts": access.lockouts,
                "locked_until": access.locked_until.isoformat(),
                "client": client,
            },
        )
    access.save(update_fields=["failures", "lockouts", "locked_until"])


def _refused(access: DecisionAccess | None, ref: str, client: str, why: str) -> SignIn:
    with transaction.atomic():
        record(
            action="portal.sign_in_failed",
            actor=PORTAL,
            object_type=PORTAL,
            object_id=ref or "-",
            payload={
                "reason": why,
                "decision": access.decision_id if access else None,
                "client": client,
            },
        )
    return SignIn(None, why)


def _within_rate_limit(client: str, now: datetime) -> bool:
    """Count this attempt against the client's window; False once over the limit."""
    width = max(settings.PORTAL_RATE_WINDOW_MINUTES, 1) * 60
    start = datetime.fromtimestamp(int(now.timestamp()) // width * width, tz=UTC)
    with transaction.atomic():
        window, created = SignInWindow.objects.get_or_create(client=client, window_start=start)
        SignInWindow.objects.filter(pk=window.pk).update(attempts=F("attempts") + 1)
        attempts = SignInWindow.objects.filter(pk=window.pk).values_list("attempts", flat=True)
        if created:  # old windows say nothing any more
            SignInWindow.objects.filter(window_start__lt=now - timedelta(days=1)).delete()
        return attempts.get() <= settings.PORTAL_RATE_LIMIT


def portal_signed_out(*, access: DecisionAccess, why: str) -> None:
    """The person ended their session ("signed_out"), or it ended ("idle", "code_replaced")."""
    with transaction.atomic():
        record(
            action="portal.signed_out",
            actor=f"person:{access.reference}" if why == "signed_out" else PORTAL,
            object_type=PORTAL,
            object_id=access.reference,
            payload={"decision": access.decision_id, "why": why},
        )
