from __future__ import annotations

from django.db.models import QuerySet

from audit import merkle, sealer
from audit.models import Alert, AuditEvent, ChainVerification, Checkpoint
from audit.tree import StoredTree
from core.errors import ApplicationError


def chain_status() -> dict:
    last = AuditEvent.objects.filter(seq__isnull=False).order_by("-seq").first()
    return {
        "count": last.seq if last else 0,
        "last_event": last,
        "staged": sealer.staged_count(),
        "oldest_staged": sealer.oldest_staged(),
        "last_verification": ChainVerification.objects.filter(
            status=ChainVerification.Status.DONE
        ).first(),
        "pending_verification": ChainVerification.objects.filter(
            status__in=[ChainVerification.Status.QUEUED, ChainVerification.Status.RUNNING]
        ).first(),
    }


def latest_size() -> int:
    latest = Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first()
    if latest is None:
        raise ApplicationError("No checkpoint has been signed yet.", code="not_found", status=404)
    return latest


def object_proof(*, object_type: str, object_id: int | str) -> dict:
    """{"checkpoint": {size, root, note}, "events": [{seq, canonical, leaf_hash, leaf_index,
    proof}], "staged": n} for every sealed event filed under the object; `staged` counts its
    events recorded but not sealed into the log yet (they have no seq or hash to prove)."""
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    size = checkpoint.tree_size if checkpoint else 0
    tree = StoredTree()
    events = []
    filed = AuditEvent.objects.filter(object_type=object_type, object_id=str(object_id))
    for event in filed.filter(seq__isnull=False).order_by("seq"):
        canonical = event.canonical
        proven = event.seq <= size
        events.append(
            {
                "seq": event.seq,
                "canonical": canonical,
                "leaf_hash": merkle.leaf_hash(canonical.encode()).hex(),
                "leaf_index": event.seq - 1,
                "proof": [h.hex() for h in tree.inclusion_proof(event.seq - 1, size)]
                if proven
                else None,
            }
        )
    return {
        "checkpoint": {"size": size, "root": checkpoint.root, "note": checkpoint.note}
        if checkpoint
        else None,
        "events": events,
        "staged": filed.filter(seq__isnull=True).count(),
    }


def alerts(
    *, state: str | None = None, kind: str | None = None, scope: str | None = None
) -> QuerySet[Alert]:
    qs = Alert.objects.all()
    if state == "resolved":
        qs = qs.exclude(resolved_at=None)
    elif state == "acknowledged":
        qs = qs.filter(resolved_at=None).exclude(acknowledged_at=None)
    elif state == "open":
        qs = qs.filter(resolved_at=None, acknowledged_at=None)
    if kind:
        qs = qs.filter(kind=kind)
    if scope:
        qs = qs.filter(scope=scope)
    return qs
