"""A decision's reference and the person's access code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from appeals import codes
from appeals.models import DecisionAccess
from audit import record
from audit.log import Actor
from reviews.models import Decision


def reference_ensure(*, decision: Decision, actor: Actor) -> DecisionAccess:
    """The decision's reference, made (at random, stored unique) the first time it is needed:
    for the notice, an access code or an appeal."""
    access = DecisionAccess.objects.filter(decision=decision).first()
    if access is not None:
        return access
    for _attempt in range(5):
        try:
            with transaction.atomic():
                access = DecisionAccess.objects.create(
                    decision=decision, reference=codes.new_reference(), created_at=timezone.now()
                )
                record(
                    action="decision.reference_assigned",
                    actor=actor,
                    obj=decision,
                    payload={"reference": access.reference},
                )
                return access
        except IntegrityError:
            # Another request made it first (one per decision), or the random reference was
            # taken (unique): look again, draw again.
            access = DecisionAccess.objects.filter(decision=decision).first()
            if access is not None:
                return access
    raise RuntimeError("could not draw an unused reference in five tries")


@dataclass
class IssuedCode:
    access: DecisionAccess
    code: str  # shown once, never stored

    @property
    def reference(self) -> str:
        return codes.show_reference(self.access.reference)

    @property
    def access_code(self) -> str:
        return codes.show_code(self.code)

    @property
    def expires_at(self) -> datetime:
        return self.access.code_expires_at


def access_code_issue(*, decision: Decision, actor: Actor, code: str | None = None) -> IssuedCode:
    """A new access code for the person the decision is about, returned once; only its slow
    hash is stored, and it replaces (revokes) the one before, ending sessions opened with it.
    `code` is for the demo only, which prints known codes as it prints known passwords."""
    access = reference_ensure(decision=decision, actor=actor)
    code = codes.normalize(code) if code else codes.new_code()
    # Hashing is slow on purpose: done before the row is locked.
    hashed = make_password(code)
    now = timezone.now()
    with transaction.atomic():
        access = DecisionAccess.objects.select_for_update().get(pk=access.pk)
        replaced = bool(access.code_hash)
        access.code_hash, access.code_issued_at = hashed, now
        access.code_expires_at = now + timedelta(days=settings.APPEAL_ACCESS_CODE_DAYS)
        access.code_issued_by = actor if getattr(actor, "pk", None) else None
        access.save(
            update_fields=["code_hash", "code_issued_at", "code_expires_at", "code_issued_by"]
        )
        record(
            action="access_code.issued",
            actor=actor,
            obj=decision,
            payload={
                "reference": access.reference,
                "expires_at": access.code_expires_at.isoformat(),
                "replaced_previous": replaced,
            },
        )
    return IssuedCode(access, code)
