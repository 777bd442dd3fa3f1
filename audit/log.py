"""Appending to the audit log and verifying it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models, transaction
from django.utils import timezone

from audit.canonical import GENESIS_HASH, canonical_json, event_hash, event_text, format_time
from audit.models import AuditEvent
from core import bulk
from core.roles import MODEL_SERVICE, has_role

# pg_advisory_xact_lock key that serializes appends; the bytes spell "OVAUDIT".
CHAIN_LOCK_KEY = 0x4F5641554449_54

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
    """Append one event. Must run inside the transaction that makes the change it records."""
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
    """Append several events with one lock and one insert, in the order given."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must be called inside the transaction of the change")
    if not entries:
        return []
    _lock_chain(connection)
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash", "time").first()
    seq, prev_hash, last_time = last or (0, GENESIS_HASH, None)
    # Times never go backwards along the chain, even if the clock does.
    now = max(timezone.now(), last_time) if last_time else timezone.now()
    events = []
    for entry in entries:
        seq += 1
        event = _build(entry, seq=seq, time=now, prev_hash=prev_hash)
        event.hash = event_hash(event.canonical)
        prev_hash = event.hash
        events.append(event)
    bulk.insert(events)
    return events


def _lock_chain(connection: Any) -> None:
    # On SQLite the IMMEDIATE transaction already holds the database's single write lock.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


def _build(entry: dict[str, Any], *, seq: int, time: datetime, prev_hash: str) -> AuditEvent:
    obj = entry.get("obj")
    object_type = entry.get("object_type") or (obj._meta.model_name if obj is not None else "")
    object_id = entry.get("object_id") or (obj.pk if obj is not None else "")
    return AuditEvent(
        seq=seq,
        time=time,
        actor=actor_label(entry.get("actor")),
        action=entry["action"],
        object_type=object_type,
        object_id=str(object_id),
        payload=canonical_json(entry.get("payload") or {}),
        prev_hash=prev_hash,
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
)


def log_size() -> int:
    """How many events the log holds: the highest seq (sequence numbers have no gaps)."""
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def iter_events(
    *, chunk_size: int = 5000, start: int | None = None, until: int | None = None
) -> Iterator[tuple]:
    """Rows of the log in sequence order, streamed (a server-side cursor on PostgreSQL)."""
    rows = AuditEvent.objects.order_by("seq")
    if start is not None:
        rows = rows.filter(seq__gte=start)
    if until is not None:
        rows = rows.filter(seq__lte=until)
    return rows.values_list(*EVENT_COLUMNS).iterator(chunk_size=chunk_size)


def row_text(row: tuple) -> str:
    """The canonical text of a row from iter_events (columns as in EVENT_COLUMNS); the time may
    also come already formatted, as PostgreSQL formats it for the verifier."""
    seq, time, actor, action, object_type, object_id, payload, prev_hash, _hash = row[:9]
    return event_text(
        seq=seq,
        time=time if isinstance(time, str) else format_time(time),
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        payload=payload,
        prev_hash=prev_hash,
    )
