"""Decision-log exports: requested by auditors and services, written by a background job.

The rows are the decisions the requester may see (reviews.selectors), read in one snapshot
on PostgreSQL; the package carries a manifest and, for auditors, the audit bundle that
`python -m audit.verify` checks offline.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import keys, record
from audit.log import log_size
from audit.models import Checkpoint
from audit.services import checkpoint_sign
from core import jobs, queueing
from core.errors import ApplicationError, forbidden
from core.roles import AUDITOR, REVIEWER, has_role
from oversight import export_sql, exports, tasks
from oversight.models import Export
from reviews.selectors import decisions_answer_visible_to, role_sight

logger = logging.getLogger(__name__)


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
    # The rows are the decisions the requester may see, with the columns their sight allows:
    # exports are for auditors and services, who see the model's answer; groups for auditors.
    sight = role_sight(actor)
    if not sight.model:
        raise forbidden("Exporting the decision log needs the auditor or model_service role.")
    clean = _checked_request(actor, format, filters, pseudonymise, include_bundle)
    with transaction.atomic():
        export = Export.objects.create(
            requested_by=actor,
            requested_at=timezone.now(),
            format=format,
            filters=clean,
            pseudonymise=pseudonymise,
            include_bundle=include_bundle,
            include_groups=sight.groups,
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
        queueing.send_after_commit(tasks.run_export, export.pk)
    return export


GROUPS_REFUSED = (
    "filtering by protected attributes is for roles that may see them (auditors): row counts "
    "would reveal who belongs to which group"
)
BUNDLE_NOT_AUDITOR = (
    "the audit bundle is for auditors only: it is the whole log up to the checkpoint, other "
    "models' decisions included"
)
BUNDLE_REVIEWER = (
    "the audit bundle is the whole log, the model's answers to the decisions awaiting blind "
    "review included: not for someone who also reviews (ask an auditor who does not)"
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
    clean, errors = exports.check_filters(filters)
    if format not in Export.Format.values:
        errors["format"] = [f"must be one of {', '.join(Export.Format.values)}"]
    if ("groups" in clean or "filters.groups" in errors) and not role_sight(actor).groups:
        errors["filters.groups"] = [GROUPS_REFUSED]
    if include_bundle and not has_role(actor, AUDITOR):
        errors["include_bundle"] = [BUNDLE_NOT_AUDITOR]
    elif include_bundle and has_role(actor, REVIEWER):
        errors["include_bundle"] = [BUNDLE_REVIEWER]
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
    """Write the export. Safe to run again: a finished export, or one another live worker is
    writing, is left as it is; one whose worker died is written again from the start."""
    if not jobs.claim(Export, export_id):
        return Export.objects.get(pk=export_id)
    Export.objects.filter(pk=export_id).update(progress=0)
    export = Export.objects.select_related("requested_by").get(pk=export_id)
    try:
        return _write_export(export)
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        # Nothing half-written is kept (a zip cut short still closes as a readable zip).
        shutil.rmtree(Path(settings.EXPORT_DIR) / str(export_id), ignore_errors=True)
        with transaction.atomic():
            Export.objects.filter(pk=export_id).update(
                status=Export.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
            )
            record(action="export.failed", obj=export, payload={"error": str(exc)[:500]})
        return Export.objects.get(pk=export_id)


def _write_export(export: Export) -> Export:
    checkpoint, cut_size = _cut_checkpoint(bundle=export.include_bundle)
    workdir = Path(settings.EXPORT_DIR) / str(export.pk)
    # A re-run (its first worker died) starts clean: nothing half-written is kept.
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    data = workdir / f"decisions.{export.format}"
    target = workdir / f"oversight-export-{export.pk}.zip"
    with exports.open_package(target) as package:
        # CSV from PostgreSQL goes into the package as the database writes it (compressed while
        # it writes the next rows); other files are written to disk, then packed.
        rows, snapshot_size, isolated, reviews, streamed = _write_rows(export, data, package)
        manifest = exports.manifest(
            export,
            rows=rows,
            data=data,
            checkpoint=checkpoint,
            log_size_at_cut=cut_size,
            log_size_at_snapshot=snapshot_size,
            isolated=isolated,
            sha256=streamed.get(data.name),
        )
        written = [] if data.name in streamed else [data]
        if reviews:
            path = data.with_name(reviews["file"])
            if path.name not in streamed:
                written.append(path)
            sha256 = streamed.get(path.name) or exports.sha256_of(path)
            manifest["reviews"] = {**reviews, "sha256": sha256}
        for path in written:
            package.write(path, path.name)
        bundle = _bundle(workdir, checkpoint) if export.include_bundle else None
        exports.finish_package(package, manifest, bundle)
    for path in written:
        path.unlink()
    if bundle:
        bundle["events"].unlink()
    return _finish(export, target, rows, manifest)


def _write_rows(
    export: Export, data: Path, package
) -> tuple[int, int, bool, dict | None, dict[str, str]]:
    """Write the decision rows; returns (rows, the log's size when they were read, whether
    they were read in one snapshot, reviews.csv's file and rows for a CSV export, the SHA-256
    of each file streamed into `package` by name). The log's size is read first, in the same
    snapshot."""
    streamed: dict[str, str] = {}
    with exports.consistent_read(export.pk) as (isolated, beat):
        snapshot_size = log_size()
        # Not the decisions whose answer the requester may not learn (one who also reviews:
        # those awaiting a blind review or posing as samples for them), filters and all.
        requester = export.requested_by
        qs = exports.decisions(decisions_answer_visible_to(requester), export.filters)
        total = max(qs.count(), 1)

        def tick(count: int) -> None:
            if count % exports.CHUNK == 0:
                beat(progress=min(95, int(95 * count / total)))

        csv_format = export.format == Export.Format.CSV
        names = (
            exports.csv_columns(qs, export.include_groups)
            if csv_format
            else exports.columns(export.include_groups)
        )
        alias = exports.pseudonymiser(export.pseudonymise)
        in_sql = export.format in export_sql.WRITERS and export_sql.available()
        if in_sql:
            # PostgreSQL writes the rows (the same bytes); the pseudonyms are made here.
            # Progress goes through the second connection while the COPY streams. Without a
            # snapshot of its own (inside a caller's transaction) there is none, and the one
            # connection is busy with the COPY: no progress then (nobody could see it before
            # that transaction commits anyway).
            write = export_sql.WRITERS[export.format]
            progress = tick if isolated else lambda count: None
            pseudonyms = alias if export.pseudonymise else None
            if csv_format:
                with exports.streamed(package, data.name) as sink:
                    rows = write(sink, qs, names, progress, alias=pseudonyms)
                streamed[data.name] = sink.sha256()
            else:
                rows = write(data, qs, names, progress, alias=pseudonyms)
        else:
            rows = exports.WRITERS[export.format](
                data,
                exports.iter_rows(
                    qs, include_groups=export.include_groups, pseudonymise=False, alias=alias
                ),
                names,
                tick,
            )
        reviews = None
        if csv_format:  # the reviews beside the rows, from the same snapshot
            by_name = has_role(export.requested_by, AUDITOR)
            path = data.with_name("reviews.csv")
            if in_sql:
                with exports.streamed(package, path.name) as sink:
                    count = export_sql.write_reviews_csv(sink, qs, by_name=by_name)
                streamed[path.name] = sink.sha256()
            else:
                count = exports.write_reviews_csv(path, qs, by_name=by_name)
            reviews = {"file": path.name, "rows": count}
    return rows, snapshot_size, isolated, reviews, streamed


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


def exports_sweep(*, now=None) -> int:
    """Send again the exports whose hand-off to a worker was lost, and take back (audited)
    those whose worker died, to write them again from the start."""
    return jobs.sweep(
        Export, send=lambda pk: queueing.send(tasks.run_export, pk), taken_back=_taken_back, now=now
    )


def _taken_back(export_id: int, now) -> None:
    record(
        action="export.requeued",
        object_type="export",
        object_id=export_id,
        payload={"reason": "no heartbeat from its worker", "at": now.isoformat()},
    )
