"""Writing to the audit log (staged events) and reading it back in sequence order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction
from django.utils import timezone

from audit.canonical import (
    canonical_json,
    event_hash,
    event_text,
    event_text_v2,
    format_time,
    leaf_hash_hex,
)
from audit.models import AuditEvent
from core import bulk
from core.roles import MODEL_SERVICE, has_role
from core.rows import insert_sql

Actor = AbstractBaseUser | AnonymousUser | str | None


def actor_label(actor: Actor) -> str:
    """How an actor is written into the log: `user:alice`, `service:svc-scorer`, `system`."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    if not actor.is_authenticated:
        return "anonymous"
    kind = "service" if has_role(actor, MODEL_SERVICE) else "user"
    return f"{kind}:{actor.get_username()}"


def record(
    *,
    action: str,
    actor: Actor = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Stage one event. Must run inside the transaction that makes the change it records."""
    entry = {
        "action": action,
        "actor": actor,
        "obj": obj,
        "object_type": object_type,
        "object_id": object_id,
        "payload": payload,
    }
    return record_many([entry])[0]


def record_many(entries: list[dict[str, Any]]) -> list[AuditEvent]:
    """Stage several events with one insert, in the order given.

    The events commit or roll back with the caller's transaction, and take no lock and read
    nothing of the log: the sealer (audit.sealer) sequences committed events later, in order,
    outside anyone's commit. Under the embedded default (AUDIT_SEAL_INLINE) the sealer runs in
    this process right after the commit."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must be called inside the transaction of the change")
    if not entries:
        return []
    now = timezone.now()
    events = [_build(entry, recorded_at=now) for entry in entries]
    batch = _batch_of(connection)
    if batch is not None:
        batch.events.extend(events)
        return events
    _stage(events)
    return events


def _stage(events: list[AuditEvent]) -> None:
    connection = transaction.get_connection()
    if connection.vendor == "postgresql" and len(events) < bulk.COPY_FROM:
        _insert_staged(connection, events)
    else:
        bulk.insert(events)
    if settings.AUDIT_SEAL_INLINE:
        # After the commit (a rollback drops it with the events). Each call adds one: the
        # first seals everything waiting, the others find nothing (one indexed query).
        transaction.on_commit(_seal_inline)


_INSERT_STAGED: dict[int, str] = {}


def _insert_staged(connection, events: list[AuditEvent]) -> None:
    """A few staged events (a claim's, an answer's) in one fixed INSERT … VALUES … RETURNING
    id: what a staged event holds (STAGED_COLUMNS; seq, time and hashes stay NULL until the
    sealer), without compiling an ORM insert per call."""
    n = len(events)
    sql = _INSERT_STAGED.get(n)
    if sql is None:
        sql = _INSERT_STAGED[n] = insert_sql(connection, AuditEvent, STAGED_COLUMNS, rows=n)
    params = [getattr(event, column) for event in events for column in STAGED_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    for event, pk in zip(events, ids, strict=True):
        event.pk, event._state.adding, event._state.db = pk, False, connection.alias


class _Batch:
    def __init__(self, connection) -> None:
        self.connection = connection
        # Savepoints open when the batch began: events recorded deeper (in a nested atomic
        # block that may roll back on its own) are not held back (see _batch_of).
        self.depth = len(connection.savepoint_ids)
        self.events: list[AuditEvent] = []


_batches = threading.local()


def _batch_of(connection) -> _Batch | None:
    stack = getattr(_batches, "stack", None)
    if not stack:
        return None
    batch = stack[-1]
    if batch.connection is not connection or len(connection.savepoint_ids) != batch.depth:
        return None
    return batch


@contextmanager
def batched() -> Iterator[None]:
    """Stage every event recorded in this block (by record, record_many, whoever calls them)
    with one insert at its end, in the order recorded: one round trip instead of one per call.
    Inside the transaction of the change, as record_many; if the block raises, nothing is
    staged (the transaction is rolling back). An event recorded inside a nested atomic block
    (a savepoint that could roll back alone) is staged at once instead, so it rolls back
    with its savepoint: it then comes before the batch's earlier events in the log (nothing
    that batches records in a savepoint today)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must be called inside the transaction of the change")
    batch = _Batch(connection)
    stack = _batches.__dict__.setdefault("stack", [])
    stack.append(batch)
    try:
        yield
    finally:
        stack.remove(batch)
    if batch.events:
        _stage(batch.events)


# The columns of a staged event, as stage_rows takes them.
STAGED_COLUMNS = ("recorded_at", "format", "actor", "action", "object_type", "object_id", "payload")


def stage_rows(rows: list[tuple[str, str, str, str, str]]) -> None:
    """Stage events given as ready values, for callers that write many at once (ingest):
    (actor label, action, object type, object id, canonical payload text) each, in order.
    The payload text must be canonical_json of the payload (the caller encodes it once). As
    record_many otherwise: in the caller's transaction, no lock, sealed after commit."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must be called inside the transaction of the change")
    if not rows:
        return
    now = timezone.now()
    bulk.insert_tuples(AuditEvent, STAGED_COLUMNS, [(now, 2, *row) for row in rows])
    if settings.AUDIT_SEAL_INLINE:
        transaction.on_commit(_seal_inline)


def _seal_inline() -> None:
    # Here, not at the top: the sealer builds on this module (it reads EVENT_COLUMNS).
    from audit import sealer

    sealer.seal_quietly()


def _build(entry: dict[str, Any], *, recorded_at: datetime) -> AuditEvent:
    obj = entry.get("obj")
    object_type = entry.get("object_type") or (obj._meta.model_name if obj is not None else "")
    object_id = entry.get("object_id") or (obj.pk if obj is not None else "")
    return AuditEvent(
        recorded_at=recorded_at,
        format=2,
        actor=actor_label(entry.get("actor")),
        action=entry["action"],
        object_type=object_type,
        object_id=str(object_id),
        payload=canonical_json(entry.get("payload") or {}),
    )


EVENT_COLUMNS = (
    "seq",
    "time",
    "actor",
    "action",
    "object_type",
    "object_id",
    "payload",
    "prev_hash",
    "hash",
    "format",
    "recorded_at",
)


def log_size() -> int:
    """How many events the log holds: the highest seq (sequence numbers have no gaps).
    Staged events, not sealed yet, are not counted."""
    sealed = AuditEvent.objects.filter(seq__isnull=False)
    return sealed.order_by("-seq").values_list("seq", flat=True).first() or 0


def iter_events(
    *, chunk_size: int = 5000, start: int | None = None, until: int | None = None
) -> Iterator[tuple]:
    """Rows of the log in sequence order, streamed (a server-side cursor on PostgreSQL)."""
    rows = AuditEvent.objects.filter(seq__isnull=False).order_by("seq")
    if start is not None:
        rows = rows.filter(seq__gte=start)
    if until is not None:
        rows = rows.filter(seq__lte=until)
    return rows.values_list(*EVENT_COLUMNS).iterator(chunk_size=chunk_size)


def row_text(row: tuple) -> str:
    """The canonical text of a row from iter_events (columns as in EVENT_COLUMNS); the times
    may also come already formatted, as PostgreSQL formats them for the verifier."""
    seq, time, actor, action, object_type, object_id, payload, prev_hash, _hash = row[:9]
    fields = {
        "seq": seq,
        "time": _text_time(time),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    if row[9] == 1:
        return event_text(**fields)
    return event_text_v2(**fields, recorded_at=_text_time(row[10]))


def row_hash(row: tuple, text: str) -> str:
    """What an event's stored hash must be, from its canonical text: SHA-256 of the text for
    format 1, its Merkle leaf for format 2."""
    return event_hash(text) if row[9] == 1 else leaf_hash_hex(text)


def _text_time(value: datetime | str | None) -> str:
    return value if isinstance(value, str) else format_time(value)
