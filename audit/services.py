"""State changes of the audit app. The log itself is written only through audit.record."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

# tasks imports this module too; both are complete by the time either is called.
from audit import keys, merkle, note, publish, record, sealer, tasks, tree
from audit.log import Actor, actor_label
from audit.models import Alert, ChainVerification, Checkpoint
from audit.verification import Trusted, verify_log
from core import jobs, queueing
from core.errors import ApplicationError, invalid, not_found

logger = logging.getLogger(__name__)


def verification_request(*, actor: Actor) -> ChainVerification:
    """Queue a background verification of the whole chain ("verify now")."""
    with transaction.atomic():
        verification = ChainVerification.objects.create(
            requested_by=actor_label(actor), requested_at=timezone.now()
        )
        record(action="audit.verification_requested", actor=actor, obj=verification)
        queueing.send_after_commit(tasks.verify_chain, verification.pk)
    return verification


def verifications_sweep(*, now=None) -> int:
    """Send again the verifications whose hand-off to a worker was lost ("verify now" while
    the broker was down), and take back (audited) those whose worker died."""
    return jobs.sweep(
        ChainVerification,
        send=lambda pk: queueing.send(tasks.verify_chain, pk),
        taken_back=_verification_taken_back,
        now=now,
    )


def _verification_taken_back(verification_id: int, now) -> None:
    record(
        action="audit.verification_requeued",
        object_type="chainverification",
        object_id=verification_id,
        payload={"reason": "no heartbeat from its worker", "at": now.isoformat()},
    )


def verification_run(*, verification_id: int) -> ChainVerification:
    """Run a queued verification (or one whose worker died). Safe to run twice: only one
    worker claims it, and verifying only reads the log."""
    claimed = jobs.claim(ChainVerification, verification_id)
    verification = ChainVerification.objects.get(pk=verification_id)
    if not claimed:
        return verification
    return _store_report(verification)


def verification_run_now(
    *, requested_by: str, vkey: str | None = None, trusted: Sequence[Trusted] = ()
) -> ChainVerification:
    """Verify at once in this process (the `audit_verify` command, the daily task) and keep
    the result. `vkey`: check checkpoint signatures against this verifier key instead of the
    server's own. The row shows the verification running meanwhile; its event is the result's
    (an event first would be one more for the verification to count)."""
    now = timezone.now()
    verification = ChainVerification.objects.create(
        requested_by=requested_by,
        requested_at=now,
        status=ChainVerification.Status.RUNNING,
        heartbeat_at=now,
        attempts=1,
    )
    return _store_report(verification, vkey, trusted)


def verification_scheduled() -> ChainVerification:
    """The daily full verification: like `audit_verify`, and an alert when the log fails it
    or cannot be verified at all."""
    try:
        verification = verification_run_now(requested_by="schedule:daily")
    except Exception as exc:
        alert_raise(kind="verification_failed", message=f"Daily verification could not run: {exc}")
        raise
    if not verification.ok:
        alert_raise(
            kind="verification_failed",
            message=f"Daily verification failed at event #{verification.first_bad_seq} "
            f"({verification.problem}): {verification.message}",
        )
    return verification


def _store_report(
    verification: ChainVerification, vkey: str | None = None, trusted: Sequence[Trusted] = ()
) -> ChainVerification:
    """Verify the log (a long read, outside any transaction), then keep the result with its
    event: `audit.verification_finished` (ok or not, with the first problem and the counts) or
    `audit.verification_failed` when the verification could not run."""
    try:
        report = verify_log(vkey=vkey, job=verification.pk, trusted=trusted)
    except Exception as exc:
        with transaction.atomic():
            verification.status = ChainVerification.Status.FAILED
            verification.message = f"verification could not run: {exc}"
            verification.finished_at = timezone.now()
            verification.save()
            record(
                action="audit.verification_failed",
                obj=verification,
                payload={
                    "requested_by": verification.requested_by,
                    "message": verification.message[:500],
                },
            )
        raise
    with transaction.atomic():
        verification.status = ChainVerification.Status.DONE
        verification.ok = report.ok
        verification.events_checked = report.count
        verification.last_seq = report.last_seq
        verification.first_bad_seq = report.first_bad_seq
        verification.problem = report.problem
        verification.message = report.message
        verification.checkpoints_checked = report.checkpoints
        verification.finished_at = timezone.now()
        verification.save()
        record(
            action="audit.verification_finished",
            obj=verification,
            payload={
                "requested_by": verification.requested_by,
                "own_key": vkey is None,
                "ok": report.ok,
                "problem": report.problem or None,
                "first_bad_seq": report.first_bad_seq,
                "events_checked": report.count,
                "last_seq": report.last_seq,
                "checkpoints_checked": report.checkpoints,
                "trusted_checkpoints": [t.label for t in trusted],
            },
        )
    return verification


# --- checkpoints -------------------------------------------------------------------------------


def seal_lag_check(*, now=None) -> Alert | None:
    """An alert when the oldest event waiting to be sealed was recorded more than
    AUDIT_SEAL_MAX_LAG_SECONDS ago (no sealer is running, or it cannot keep up)."""
    oldest = sealer.oldest_staged()
    now = now or timezone.now()
    if oldest is None or (now - oldest).total_seconds() <= settings.AUDIT_SEAL_MAX_LAG_SECONDS:
        return None
    return alert_raise(
        kind="seal_lag",
        scope="audit",
        message=f"{sealer.staged_count()} audit events are waiting to be sealed; the oldest "
        f"was recorded at {oldest:%Y-%m-%d %H:%M:%S} UTC, more than "
        f"{settings.AUDIT_SEAL_MAX_LAG_SECONDS} s ago. Is `manage.py audit_sealer` running?",
    )


def checkpoint_sign() -> Checkpoint | None:
    """Seal new events into the Merkle tree and sign a checkpoint, if the log has grown.

    Before signing, the log must be an extension of the last checkpoint: the stored tree must
    still give that checkpoint's root and a consistency proof must verify. Otherwise nothing
    is signed, an alert is raised, and ApplicationError says why. A sample of the sealed
    events is also recomputed from their rows (tree.spot_check): the stored tree alone does
    not show an event rewritten after it was sealed.
    """
    signer = _checkpoint_signer()
    sealer.seal_all()  # whatever is committed and waiting goes in first
    try:
        with transaction.atomic():
            size = tree.extend()
            previous = Checkpoint.objects.order_by("-tree_size").first()
            if size == 0 or (previous and previous.tree_size == size):
                return None
            tree.spot_check(size, also=[previous.tree_size] if previous else [])
            stored = tree.StoredTree()
            root = stored.root(size)
            if previous is not None:
                _check_extension(stored, previous, size, root)
            return _store_checkpoint(size, root, signer)
    except tree.TreeError as exc:
        alert_raise(kind="checkpoint_refused", message=f"Checkpoint refused: {exc}")
        raise ApplicationError(f"Checkpoint refused: {exc}", code="checkpoint_refused") from exc


def _checkpoint_signer() -> str:
    """The signer key, if it is named after this log's origin; else an alert and a refusal."""
    signer = keys.signer()
    problem = keys.origin_mismatch(note.parse_signer(signer)[0])
    if problem:
        alert_raise(kind="checkpoint_refused", message=f"Checkpoint refused: {problem}")
        raise ApplicationError(f"Checkpoint refused: {problem}", code="key_origin_mismatch")
    return signer


def _check_extension(stored: tree.StoredTree, previous: Checkpoint, size: int, root: bytes) -> None:
    if previous.tree_size > size:
        raise tree.TreeError(
            f"the log has {size} events, fewer than the {previous.tree_size} already signed"
        )
    old_root = bytes.fromhex(previous.root)
    if stored.root(previous.tree_size) != old_root:
        raise tree.TreeError(
            f"the first {previous.tree_size} events no longer give the signed root"
        )
    proof = stored.consistency_proof(previous.tree_size, size)
    if not merkle.verify_consistency(previous.tree_size, size, old_root, root, proof):
        raise tree.TreeError(f"size {size} is not consistent with checkpoint {previous.tree_size}")


def checkpoint_publish(*, checkpoint: Checkpoint) -> list[publish.Problem]:
    """Publish a committed checkpoint outside the database (the mirror, the witnesses); each
    problem is an alert too."""
    problems = publish.published(checkpoint)
    for problem in problems:
        alert_raise(kind=problem.kind, scope=problem.scope, message=problem.message)
    return problems


def _store_checkpoint(size: int, root: bytes, signer: str) -> Checkpoint:
    signed = note.sign(note.checkpoint_text(settings.AUDIT_ORIGIN, size, root), signer)
    _, key_id, _ = note.parse_vkey(note.vkey_for(signer))
    # Checkpoints are not themselves events of the log: the table is append-only and signed,
    # and an event per checkpoint would make the log grow forever by signing it.
    checkpoint = Checkpoint.objects.create(
        tree_size=size,
        root=root.hex(),
        origin=settings.AUDIT_ORIGIN,
        key_id=key_id.hex(),
        note=signed,
        created_at=timezone.now(),
    )
    transaction.on_commit(lambda: checkpoint_publish(checkpoint=checkpoint))
    return checkpoint


def alert_raise(*, kind: str, message: str, scope: str = "") -> Alert:
    """Raise an alert for auditors. While it is unresolved, raising it again changes nothing:
    one open alert per kind and scope (per kind and message when there is no scope)."""
    logger.error("alert %s %s: %s", kind, scope, message)
    same = {"kind": kind, "scope": scope} if scope else {"kind": kind, "message": message}
    try:
        with transaction.atomic():
            existing = Alert.objects.filter(**same, resolved_at=None).first()
            if existing is not None:
                return existing
            alert = Alert.objects.create(
                kind=kind, scope=scope, message=message, created_at=timezone.now()
            )
            record(
                action="alert.raised",
                obj=alert,
                payload={"kind": kind, "scope": scope, "message": message},
            )
    except IntegrityError:
        # Raised at the same moment elsewhere (the database keeps one open per scope).
        return Alert.objects.get(**same, resolved_at=None)
    return alert


def _alert_locked(alert_id: int) -> Alert:
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise not_found("No such alert.")
    if alert.resolved_at is not None:
        raise ApplicationError(
            f"This alert was resolved at {alert.resolved_at:%Y-%m-%d %H:%M} UTC.", code="resolved"
        )
    return alert


def _noted(alert: Alert, actor: User, verb: str, note: str) -> str:
    line = f"{timezone.now():%Y-%m-%d %H:%M} UTC, {actor.get_username()} {verb}: {note}"
    return f"{alert.notes}\n{line}".strip()


def alert_acknowledge(*, alert_id: int, actor: User, note: str = "") -> Alert:
    """Someone is looking at it: the alert stays open, marked as acknowledged, with the note."""
    note = (note or "").strip()
    if len(note) > 2000:
        raise invalid({"note": ["must be at most 2000 characters"]})
    with transaction.atomic():
        alert = _alert_locked(alert_id)
        if alert.acknowledged_at is not None:
            raise ApplicationError("This alert is already acknowledged.", code="acknowledged")
        alert.acknowledged_at, alert.acknowledged_by = timezone.now(), actor
        alert.notes = _noted(alert, actor, "acknowledged", note or "(no note)")
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "notes"])
        record(action="alert.acknowledged", actor=actor, obj=alert, payload={"note": note})
    return alert


def alert_resolve(*, alert_id: int, actor: User, note: str) -> Alert:
    """Close the alert, saying what was done (required: the next auditor reads it)."""
    note = (note or "").strip()
    if not note or len(note) > 2000:
        raise invalid({"note": ["say what was found or done (1 to 2000 characters)"]})
    with transaction.atomic():
        alert = _alert_locked(alert_id)
        alert.resolved_at, alert.resolved_by = timezone.now(), actor
        alert.notes = _noted(alert, actor, "resolved", note)
        alert.save(update_fields=["resolved_at", "resolved_by", "notes"])
        record(action="alert.resolved", actor=actor, obj=alert, payload={"note": note})
    return alert


def viewed(*, actor: Actor, action: str, object_type: str, object_id: int | str, **payload) -> None:
    """Reads of personal records are audited too: who opened what, when."""
    with transaction.atomic():
        record(
            action=action,
            actor=actor,
            object_type=object_type,
            object_id=object_id,
            payload=payload,
        )


def checkpoint_request(*, actor: Actor) -> Checkpoint | None:
    """A person's "sign now": recorded in the log (so the checkpoint covers the request
    itself), then a checkpoint signed as the periodic job would sign it."""
    with transaction.atomic():
        record(action="checkpoint.requested", actor=actor, payload={})
    return checkpoint_sign()
