"""Publishing signed checkpoints outside the database, once they are committed.

A log is tamper-evident only against checkpoints kept where its operator cannot rewrite them.
So each new checkpoint is written to the mirror (AUDIT_CHECKPOINT_MIRROR: a directory of signed
notes, or a .jsonl file, on storage outside the database) and handed to each witness in
AUDIT_WITNESS_URLS with a consistency proof from the last checkpoint it cosigned (the C2SP
tlog-witness `add-checkpoint` request). A witness's cosignature is kept when it verifies under
a key in AUDIT_WITNESS_KEYS. Failures come back as Problems, which the caller turns into
alerts (audit.services.checkpoint_publish); they never undo the checkpoint.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from audit import note, record
from audit.models import Checkpoint, Cosignature
from audit.tree import StoredTree

logger = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Problem:
    kind: str  # checkpoint_mirror, witness_unreachable, witness_refused
    scope: str  # the mirror's path or the witness's address
    message: str


def published(checkpoint: Checkpoint) -> list[Problem]:
    """Mirror the checkpoint and ask the witnesses to cosign it; the problems, if any."""
    problems = []
    if problem := mirror(checkpoint):
        problems.append(problem)
    for url in settings.AUDIT_WITNESS_URLS:
        if problem := ask_witness(url, checkpoint):
            problems.append(problem)
    return problems


def mirror(checkpoint: Checkpoint) -> Problem | None:
    target = settings.AUDIT_CHECKPOINT_MIRROR
    if not target or target == "off":
        return None
    path = Path(target)
    try:
        if path.suffix == ".jsonl":
            _append_line(path, checkpoint)
        else:
            _write_file(path, checkpoint)
    except (OSError, ValueError) as exc:
        return _problem(
            "checkpoint_mirror",
            target,
            f"could not mirror checkpoint {checkpoint.tree_size} to {target}: {exc}",
        )
    return None


def _write_file(directory: Path, checkpoint: Checkpoint) -> None:
    """One file per checkpoint, never overwritten: a different note for a size already
    mirrored is a fork, and is said so."""
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / f"{checkpoint.tree_size:020d}.txt"
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if file.read_text(encoding="utf-8") != checkpoint.note:
            raise ValueError(
                f"{file} already holds another checkpoint of size {checkpoint.tree_size}: "
                "the log forked"
            ) from None
        return
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(checkpoint.note)


def _append_line(file: Path, checkpoint: Checkpoint) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"size": checkpoint.tree_size, "note": checkpoint.note}) + "\n")


# --- witnesses --------------------------------------------------------------------------------


def ask_witness(url: str, checkpoint: Checkpoint, *, retry: bool = True) -> Problem | None:
    """POST the checkpoint, with the consistency proof from the size this witness last
    cosigned, to its add-checkpoint endpoint; keep the cosignature it answers with."""
    old = (
        Cosignature.objects.filter(url=url).aggregate(size=Max("checkpoint__tree_size"))["size"]
        or 0
    )
    try:
        status, body = _post(url, _request_body(old, checkpoint))
    except (OSError, urllib.error.URLError) as exc:
        return _problem("witness_unreachable", url, f"witness {url} could not be reached: {exc}")
    if status == 409 and body.strip().isdigit() and retry:
        # It last cosigned another size (it was reset, or a cosignature was lost): say that one.
        return _ask_again(url, checkpoint, int(body.strip()))
    if status != 200:
        return _problem(
            "witness_refused",
            url,
            f"witness {url} refused checkpoint {checkpoint.tree_size} ({status}): {body[:300]}",
        )
    return _keep_all(checkpoint, body, url)


def _ask_again(url: str, checkpoint: Checkpoint, known: int) -> Problem | None:
    if known > checkpoint.tree_size:
        return _problem(
            "witness_refused",
            url,
            f"witness {url} has cosigned size {known}, larger than the log's checkpoint "
            f"{checkpoint.tree_size}: the log was rolled back",
        )
    try:
        status, body = _post(url, _request_body(known, checkpoint))
    except (OSError, urllib.error.URLError) as exc:
        return _problem("witness_unreachable", url, f"witness {url} could not be reached: {exc}")
    if status != 200:
        return _problem(
            "witness_refused",
            url,
            f"witness {url} refused checkpoint {checkpoint.tree_size} ({status}): {body[:300]}",
        )
    return _keep_all(checkpoint, body, url)


def _request_body(old: int, checkpoint: Checkpoint) -> str:
    proof = StoredTree().consistency_proof(old, checkpoint.tree_size) if old else []
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return "\n".join(lines) + "\n\n" + checkpoint.note


def _post(url: str, body: str) -> tuple[int, str]:
    endpoint = url.rstrip("/") + "/add-checkpoint"
    if not endpoint.startswith(("http://", "https://")):
        raise OSError(f"{url}: not an http(s) address")
    request = urllib.request.Request(  # noqa: S310 (checked just above)
        endpoint, data=body.encode(), headers={"Content-Type": CONTENT_TYPE}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _keep_all(checkpoint: Checkpoint, body: str, url: str) -> str | None:
    lines = [line + "\n" for line in body.splitlines() if line.startswith(note.DASH)]
    problems = [
        p
        for p in (cosignature_keep(checkpoint=checkpoint, line=line, url=url) for line in lines)
        if isinstance(p, str)
    ]
    if not lines:
        return _problem("witness_refused", url, f"witness {url} answered without a cosignature")
    return problems[0] if problems else None


def cosignature_keep(*, checkpoint: Checkpoint, line: str, url: str = "") -> Cosignature | str:
    """Verify a witness's cosignature line on the checkpoint against the known witness keys and
    keep it (audited); the reason (a str) when it is refused."""
    for vkey in settings.AUDIT_WITNESS_KEYS:
        try:
            timestamp = note.open_cosignature(checkpoint.note + line, vkey)
        except note.NoteError:
            continue
        name, key_id, _ = note.parse_cosigner_vkey(vkey)
        return _store(checkpoint, name, key_id.hex(), timestamp, line, url)
    return "the cosignature is not signed by any witness key this log knows (AUDIT_WITNESS_KEYS)"


def _store(checkpoint, name: str, key_id: str, timestamp: int, line: str, url: str):
    try:
        with transaction.atomic():
            cosignature = Cosignature.objects.create(
                checkpoint=checkpoint,
                witness=name,
                key_id=key_id,
                signed_at=datetime.fromtimestamp(timestamp, UTC),
                line=line,
                url=url,
                received_at=timezone.now(),
            )
            record(
                action="checkpoint.cosigned",
                obj=checkpoint,
                payload={"witness": name, "key_id": key_id, "size": checkpoint.tree_size},
            )
    except IntegrityError:  # this witness cosigned it already
        return Cosignature.objects.get(checkpoint=checkpoint, key_id=key_id)
    return cosignature


def _problem(kind: str, scope: str, message: str) -> Problem:
    logger.warning(message)
    return Problem(kind, scope[:100], message)


def cosigned_note(checkpoint: Checkpoint) -> str:
    """The signed note with every cosignature line kept for it."""
    return checkpoint.note + "".join(c.line for c in checkpoint.cosignatures.order_by("witness"))
