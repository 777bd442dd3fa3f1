"""State changes of the audit app. The log itself is written only through audit.record."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit import record
from audit.log import Actor, actor_label, verify_chain
from audit.models import ChainVerification


def verification_request(*, actor: Actor) -> ChainVerification:
    """Queue a background verification of the whole chain ("verify now")."""
    from audit import tasks

    with transaction.atomic():
        verification = ChainVerification.objects.create(
            requested_by=actor_label(actor), requested_at=timezone.now()
        )
        record(action="audit.verification_requested", actor=actor, obj=verification)
        transaction.on_commit(lambda: tasks.verify_chain.delay(verification.pk))
    return verification


def verification_run(*, verification_id: int) -> ChainVerification:
    """Run a queued verification. Safe to run twice: verifying only reads the log."""
    pending = (ChainVerification.Status.QUEUED, ChainVerification.Status.RUNNING)
    claimed = ChainVerification.objects.filter(pk=verification_id, status__in=pending).update(
        status=ChainVerification.Status.RUNNING
    )
    verification = ChainVerification.objects.get(pk=verification_id)
    if not claimed:
        return verification
    return _store_report(verification)


def verification_run_now(*, requested_by: str) -> ChainVerification:
    """Verify at once in this process (the `audit_verify` command) and keep the result."""
    verification = ChainVerification.objects.create(
        requested_by=requested_by,
        requested_at=timezone.now(),
        status=ChainVerification.Status.RUNNING,
    )
    return _store_report(verification)


def _store_report(verification: ChainVerification) -> ChainVerification:
    try:
        report = verify_chain()
    except Exception as exc:
        verification.status = ChainVerification.Status.FAILED
        verification.message = f"verification could not run: {exc}"
        verification.finished_at = timezone.now()
        verification.save()
        raise
    verification.status = ChainVerification.Status.DONE
    verification.ok = report.ok
    verification.events_checked = report.count
    verification.last_seq = report.last_seq
    verification.first_bad_seq = report.first_bad_seq
    verification.problem = report.problem
    verification.message = report.message
    verification.finished_at = timezone.now()
    verification.save()
    return verification
