"""The sealer: puts committed staged events into the log, in order, outside anyone's commit.

`audit.record` stages an event in the transaction of its change: no lock, no read of the
chain's head, so that no writer waits for another's commit (as transparency logs queue
entries and a sequencer integrates them). The sealer, one at a time (the tree lock, a
transaction-scoped advisory lock on PostgreSQL, SQLite's write lock elsewhere), takes the
committed staged events in the order they were staged and, in one transaction per batch,
gives each its gapless `seq`, its seal `time` (never earlier than the event before), its
`prev_hash` and its `hash` (its format-2 canonical text's Merkle leaf), and appends the leaves
and the subtrees they complete to the stored Merkle tree. A rolled-back change leaves no
event; a sealer killed mid-batch leaves its batch staged for the next one.

It runs as `manage.py audit_sealer` (a long-running process on PostgreSQL, started by
`make worker`), or in-process after each commit under the embedded default
(AUDIT_SEAL_INLINE, on with SQLite). Checkpoint signing seals whatever is waiting first.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import merkle, tree
from audit.canonical import GENESIS_HASH, event_text_v2, format_time
from audit.models import AuditEvent, MerkleNode, SealPermit, TreeState
from core import bulk

logger = logging.getLogger(__name__)
BATCH = 5000
# pg_try_advisory_lock key held by the running sealer process for its lifetime; "OVSEAL".
SEALER_LOCK_KEY = 0x4F565345414C
_STAGED = ("id", "actor", "action", "object_type", "object_id", "payload", "recorded_at")


def seal(*, limit: int = BATCH) -> int:
    """Seal up to `limit` committed staged events, oldest first. Returns how many."""
    with transaction.atomic():
        tree.lock()
        staged = list(
            AuditEvent.objects.filter(seq__isnull=True).order_by("id").values_list(*_STAGED)[:limit]
        )
        if not staged:
            return 0
        head = tree.extend()  # the tree is in step with the sealed log (catches up old logs)
        prev_hash, last_time = _head(head)
        now = max(timezone.now(), last_time) if last_time else timezone.now()
        builder = merkle.TreeBuilder.resume(head, tree.StoredTree().frontier(head))
        rows, nodes = _sealed_rows(staged, head, prev_hash, now, builder)
        SealPermit.objects.create(created_at=now)
        _update(rows)
        bulk.insert_tuples(MerkleNode, tree.NODE_COLUMNS, nodes)
        TreeState.objects.create(size=head + len(rows), updated_at=now)
        SealPermit.objects.all().delete()
    return len(rows)


def _head(size: int) -> tuple[str, datetime | None]:
    if size == 0:
        return GENESIS_HASH, None
    return AuditEvent.objects.filter(seq=size).values_list("hash", "time").get()


def _sealed_rows(staged, seq: int, prev_hash: str, now: datetime, builder) -> tuple[list, list]:
    """(id, seq, time, prev_hash, hash) per staged event, in order, and the Merkle nodes the
    new leaves complete."""
    sealed_at, rows, nodes = format_time(now), [], []
    sha256 = hashlib.sha256
    for pk, actor, action, object_type, object_id, payload, recorded_at in staged:
        seq += 1
        text = event_text_v2(
            seq=seq, time=sealed_at, recorded_at=format_time(recorded_at), actor=actor,
            action=action, object_type=object_type, object_id=object_id, payload=payload,
            prev_hash=prev_hash,
        )  # fmt: skip
        leaf = sha256(b"\x00" + text.encode()).digest()
        rows.append((pk, seq, now, prev_hash, leaf.hex()))
        nodes += builder.append(leaf)
        prev_hash = leaf.hex()
    return rows, nodes


def _update(rows: list[tuple]) -> None:
    """Set seq, time, prev_hash and hash of the sealed rows (one statement on PostgreSQL)."""
    if connection.vendor == "postgresql":
        columns = [list(column) for column in zip(*rows, strict=True)]
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE audit_auditevent AS e SET seq = v.seq, time = v.time, "
                "prev_hash = v.prev_hash, hash = v.hash "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::varchar[], "
                "%s::varchar[]) AS v(id, seq, time, prev_hash, hash) WHERE e.id = v.id",
                columns,
            )
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE audit_auditevent SET seq = %s, time = %s, prev_hash = %s, hash = %s "
            "WHERE id = %s",
            [(seq, when, prev, digest, pk) for pk, seq, when, prev, digest in rows],
        )


def seal_all() -> int:
    """Seal everything committed and waiting, batch after batch."""
    total = 0
    while sealed := seal():
        total += sealed
    return total


def seal_quietly() -> None:
    """Inline sealing after a commit: a failure is logged, never raised into the request whose
    change already committed; its events stay staged for the next seal (and the lag alert)."""
    try:
        seal_all()
    except Exception:
        logger.exception("sealing the audit log failed; the events stay staged")


def oldest_staged() -> datetime | None:
    """When the oldest event still waiting to be sealed was recorded."""
    staged = AuditEvent.objects.filter(seq__isnull=True).order_by("id")
    return staged.values_list("recorded_at", flat=True).first()


def staged_count() -> int:
    return AuditEvent.objects.filter(seq__isnull=True).count()


def run(*, interval: float = 0.1, stop: Callable[[], bool] = lambda: False) -> None:
    """The sealer process: seal as events arrive, until `stop()` says so. On PostgreSQL one
    process at a time holds the sealer lock; another waits as a standby and takes over when
    the first one's connection ends (it died)."""
    _wait_for_the_lock(stop)
    while not stop():
        try:
            sealed = seal()
        except Exception:
            logger.exception("sealing failed; trying again")
            connection.close()
            time.sleep(1)
            continue
        if not sealed:
            time.sleep(interval)


def _wait_for_the_lock(stop: Callable[[], bool]) -> None:
    if connection.vendor != "postgresql":
        return
    while not stop():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [SEALER_LOCK_KEY])
            if cursor.fetchone()[0]:
                return
        logger.info("another sealer is running; standing by")
        time.sleep(settings.AUDIT_SEALER_STANDBY_SECONDS)
