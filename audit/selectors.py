from __future__ import annotations

from audit.models import AuditEvent, ChainVerification


def chain_status() -> dict:
    last = AuditEvent.objects.order_by("-seq").first()
    return {
        "count": last.seq if last else 0,
        "last_event": last,
        "last_verification": ChainVerification.objects.filter(
            status=ChainVerification.Status.DONE
        ).first(),
        "pending_verification": ChainVerification.objects.filter(
            status__in=[ChainVerification.Status.QUEUED, ChainVerification.Status.RUNNING]
        ).first(),
    }
