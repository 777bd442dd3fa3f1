"""State changes of the audit app. The log itself is written only through audit.record."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import exports, keys, merkle, note, record, tree
from audit.log import Actor, actor_label, log_size
from audit.models import Alert, ChainVerification, Checkpoint, Export
from audit.verification import verify_log
from core.errors import ApplicationError
from core.roles import AUDITOR, has_role

logger = logging.getLogger(__name__)


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


def verification_run_now(*, requested_by: str, vkey: str | None = None) -> ChainVerification:
    """Verify at once in this process (the `audit_verify` command, the daily task) and keep
    the result. `vkey`: check checkpoint signatures against this verifier key instead of the
    server's own."""
    verification = ChainVerification.objects.create(
        requested_by=requested_by,
        requested_at=timezone.now(),
        status=ChainVerification.Status.RUNNING,
    )
    return _store_report(verification, vkey)


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


def _store_report(verification: ChainVerification, vkey: str | None = None) -> ChainVerification:
    try:
        report = verify_log(vkey=vkey)
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
    verification.checkpoints_checked = report.checkpoints
    verification.finished_at = timezone.now()
    verification.save()
    return verification


# --- checkpoints -------------------------------------------------------------------------------


def checkpoint_sign() -> Checkpoint | None:
    """Seal new events into the Merkle tree and sign a checkpoint, if the log has grown.

    Before signing, the log must be an extension of the last checkpoint: the stored tree must
    still give that checkpoint's root and a consistency proof must verify. Otherwise nothing
    is signed, an alert is raised, and ApplicationError says why. A sample of the sealed
    events is also recomputed from their rows (tree.spot_check): the stored tree alone does
    not show an event rewritten after it was sealed.
    """
    signer = _checkpoint_signer()
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


def _store_checkpoint(size: int, root: bytes, signer: str) -> Checkpoint:
    signed = note.sign(note.checkpoint_text(settings.AUDIT_ORIGIN, size, root), signer)
    _, key_id, _ = note.parse_vkey(note.vkey_for(signer))
    # Checkpoints are not themselves events of the log: the table is append-only and signed,
    # and an event per checkpoint would make the log grow forever by signing it.
    return Checkpoint.objects.create(
        tree_size=size,
        root=root.hex(),
        origin=settings.AUDIT_ORIGIN,
        key_id=key_id.hex(),
        note=signed,
        created_at=timezone.now(),
    )


def alert_raise(*, kind: str, message: str) -> Alert:
    """Raise an alert for auditors, once while it stays unresolved."""
    logger.error("audit alert %s: %s", kind, message)
    with transaction.atomic():
        existing = Alert.objects.filter(kind=kind, message=message, resolved_at=None).first()
        if existing is not None:
            return existing
        alert = Alert.objects.create(kind=kind, message=message, created_at=timezone.now())
        record(action="alert.raised", obj=alert, payload={"kind": kind, "message": message})
    return alert


# --- exports -----------------------------------------------------------------------------------


def export_request(
    *,
    actor: User,
    format: str,
    filters: dict | None = None,
    pseudonymise: bool = False,
    include_bundle: bool = False,
) -> Export:
    """Queue an export of the decisions the requester may see. Protected attributes go in,
    and may be filtered on, only when the requester's role allows them; the audit bundle is
    for auditors, and never with pseudonymised rows."""
    from audit import tasks
    from reviews.selectors import may_see_groups

    clean = _checked_request(actor, format, filters, pseudonymise, include_bundle)
    with transaction.atomic():
        export = Export.objects.create(
            requested_by=actor,
            requested_at=timezone.now(),
            format=format,
            filters=clean,
            pseudonymise=pseudonymise,
            include_bundle=include_bundle,
            include_groups=may_see_groups(actor),
        )
        record(
            action="export.created",
            actor=actor,
            obj=export,
            payload={
                "format": format,
                "filters": clean,
                "pseudonymise": pseudonymise,
                "include_bundle": include_bundle,
                "include_groups": export.include_groups,
            },
        )
        transaction.on_commit(lambda: tasks.run_export.delay(export.pk))
    return export


GROUPS_REFUSED = (
    "filtering by protected attributes is for roles that may see them (auditors): row counts "
    "would reveal who belongs to which group"
)
BUNDLE_NOT_AUDITOR = (
    "the audit bundle is for auditors only: it is the whole log up to the checkpoint, other "
    "models' decisions included"
)
BUNDLE_PSEUDONYMISED = (
    "the bundle carries the raw log, subject references included; it cannot be pseudonymised"
)
BUNDLE_NO_KEY = (
    "the audit bundle needs a signed checkpoint, and no checkpoint signing key is configured "
    "(set OVERSIGHT_SIGNING_KEY or run `manage.py audit_keygen`); export without the bundle"
)


def _checked_request(
    actor: User, format: str, filters: dict | None, pseudonymise: bool, include_bundle: bool
) -> dict:
    """The clean filters; ApplicationError (400) naming every bad field otherwise."""
    from reviews.selectors import may_see_groups

    clean, errors = exports.check_filters(filters)
    if format not in Export.Format.values:
        errors["format"] = [f"must be one of {', '.join(Export.Format.values)}"]
    if ("groups" in clean or "filters.groups" in errors) and not may_see_groups(actor):
        errors["filters.groups"] = [GROUPS_REFUSED]
    if include_bundle and not has_role(actor, AUDITOR):
        errors["include_bundle"] = [BUNDLE_NOT_AUDITOR]
    elif include_bundle and pseudonymise:
        errors["include_bundle"] = [BUNDLE_PSEUDONYMISED]
    if errors:
        raise ApplicationError("Invalid export request.", code="invalid", status=400, fields=errors)
    if include_bundle and not keys.configured():
        raise ApplicationError(
            f"No audit bundle: {BUNDLE_NO_KEY}.",
            code="not_configured",
            fields={"include_bundle": [BUNDLE_NO_KEY]},
        )
    return clean


def export_run(*, export_id: int) -> Export:
    """Write the export. Safe to run again: a finished export is left as it is."""
    pending = [Export.Status.QUEUED, Export.Status.RUNNING]
    if not Export.objects.filter(pk=export_id, status__in=pending).update(
        status=Export.Status.RUNNING, progress=0
    ):
        return Export.objects.get(pk=export_id)
    export = Export.objects.select_related("requested_by").get(pk=export_id)
    try:
        return _write_export(export)
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        with transaction.atomic():
            Export.objects.filter(pk=export_id).update(
                status=Export.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
            )
            record(action="export.failed", obj=export, payload={"error": str(exc)[:500]})
        return Export.objects.get(pk=export_id)


def _write_export(export: Export) -> Export:
    checkpoint, cut_size = _cut_checkpoint(bundle=export.include_bundle)
    workdir = Path(settings.EXPORT_DIR) / str(export.pk)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"decisions.{export.format}"
    rows, snapshot_size, isolated = _write_rows(export, data)
    manifest = exports.manifest(
        export,
        rows=rows,
        data=data,
        checkpoint=checkpoint,
        log_size_at_cut=cut_size,
        log_size_at_snapshot=snapshot_size,
        isolated=isolated,
    )
    bundle = _bundle(workdir, checkpoint) if export.include_bundle else None
    target = workdir / f"oversight-export-{export.pk}.zip"
    exports.package(target, data, manifest, bundle)
    data.unlink()
    if bundle:
        bundle["events"].unlink()
    return _finish(export, target, rows, manifest)


def _write_rows(export: Export, data: Path) -> tuple[int, int, bool]:
    """Write the decision rows; returns (rows, the log's size when they were read, whether
    they were read in one snapshot). The log's size is read first, in the same snapshot."""
    from reviews.selectors import decisions_visible_to

    with exports.consistent_read(export.pk) as (isolated, set_progress):
        snapshot_size = log_size()
        qs = exports.decisions(decisions_visible_to(export.requested_by), export.filters)
        total = max(qs.count(), 1)

        def tick(count: int) -> None:
            if count % exports.CHUNK == 0:
                set_progress(min(95, int(95 * count / total)))

        rows = exports.WRITERS[export.format](
            data,
            exports.iter_rows(
                qs, include_groups=export.include_groups, pseudonymise=export.pseudonymise
            ),
            exports.columns(export.include_groups),
            tick,
        )
    return rows, snapshot_size, isolated


def _cut_checkpoint(*, bundle: bool) -> tuple[Checkpoint | None, int]:
    """Sign a checkpoint covering everything logged so far (if the log grew) and use it;
    returns it with the log's size at the cut. Without a signing key there is no checkpoint:
    the export goes on without one unless it must carry the bundle. So it does with a key named
    for another log (the refusal to sign has raised its alert)."""
    if not keys.configured():
        if bundle:
            raise ApplicationError(f"No audit bundle: {BUNDLE_NO_KEY}.", code="not_configured")
        return None, log_size()
    try:
        checkpoint_sign()
    except ApplicationError as exc:
        if bundle or exc.code != "key_origin_mismatch":
            raise
        return None, log_size()
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    return checkpoint, checkpoint.tree_size if checkpoint else 0


def _bundle(workdir: Path, checkpoint: Checkpoint | None) -> dict:
    if checkpoint is None:
        raise ApplicationError("No audit bundle: the log is empty, there is no checkpoint.")
    events = workdir / "events.jsonl"
    exports.write_bundle_events(events, checkpoint.tree_size)
    return {"events": events, "note": checkpoint.note, "vkey": keys.vkey()}


def _finish(export: Export, target: Path, rows: int, manifest: dict) -> Export:
    with transaction.atomic():
        export.status, export.progress, export.rows = Export.Status.DONE, 100, rows
        export.file_name, export.size_bytes = target.name, target.stat().st_size
        export.sha256, export.manifest = exports.sha256_of(target), manifest
        export.finished_at = timezone.now()
        export.save()
        record(
            action="export.finished",
            obj=export,
            payload={
                "rows": rows,
                "sha256": export.sha256,
                "data_sha256": manifest["sha256"],
                "checkpoint_size": (manifest["checkpoint"] or {}).get("size"),
                "log_size_at_snapshot": manifest["log_size_at_snapshot"],
            },
        )
    return export


def export_path(export: Export) -> Path:
    return Path(settings.EXPORT_DIR) / str(export.pk) / export.file_name


def export_download(*, export: Export, actor: User) -> Path:
    """The packaged file of a finished export; the download is audited."""
    if export.status != Export.Status.DONE:
        raise ApplicationError(f"This export is {export.status}, not ready to download.")
    path = export_path(export)
    if not path.exists():
        raise ApplicationError("The export's file is gone from the export directory.", status=410)
    with transaction.atomic():
        record(
            action="export.downloaded", actor=actor, obj=export, payload={"sha256": export.sha256}
        )
    return path


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
