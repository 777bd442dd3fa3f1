"""Writing, delivering and re-sending outbox messages."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit import record
from audit.log import Actor
from audit.services import alert_raise
from core import queueing
from core.errors import ApplicationError, not_found
from core.rows import insert_sql

# tasks imports this module too; both are complete by the time either is called.
from outbox import handlers, tasks
from outbox.models import Message

logger = logging.getLogger(__name__)
PENDING, DELIVERED, DEAD = Message.Status.PENDING, Message.Status.DELIVERED, Message.Status.DEAD


def message_enqueue(*, kind: str, payload: dict[str, Any], key: str, scope: str = "") -> Message:
    """Write a message in the caller's transaction; it is handed to a worker after commit and
    re-sent by the sweep until delivered. The same `key` twice is the same message."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox messages are written in the transaction of their change")
    handlers.handler_for(kind)  # an unknown kind is a bug here, not a dead letter later
    now = timezone.now()
    message = Message(
        kind=kind, key=key, payload=payload, scope=scope, next_attempt_at=now, created_at=now
    )
    message.pk = _insert_new(message)
    if message.pk is None:
        # Written before (or by a transaction that committed meanwhile): that one stands.
        return Message.objects.get(key=key)
    message._state.adding, message._state.db = False, transaction.get_connection().alias
    queueing.send_after_commit(tasks.deliver, message.pk)
    return message


_FIELDS = [f for f in Message._meta.concrete_fields if not f.primary_key]


def _insert_new(message: Message) -> int | None:
    """Insert the message unless its key is taken, in one statement (INSERT … ON CONFLICT DO
    NOTHING RETURNING, on PostgreSQL and SQLite): its id, or None when the key was there. A
    concurrent writer of the same key makes this wait for its transaction, then do nothing
    if it committed. No savepoint, no read first (get_or_create took four round trips)."""
    connection = transaction.get_connection()
    sql = insert_sql(connection, Message, [f.name for f in _FIELDS], skip_conflict_on="key")
    params = [f.get_db_prep_save(f.pre_save(message, True), connection) for f in _FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def backoff(attempts: int) -> timedelta:
    """Wait before the next try: OUTBOX_BACKOFF_SECONDS, doubling with each failure, at most
    an hour."""
    seconds = settings.OUTBOX_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, 3600))


def _claim(message_id: int, now: datetime, *, due_only: bool) -> bool:
    """Take the message for delivery: pending, and nobody's live lease on it. The row count
    of the conditional update says whether this worker won it."""
    free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    claimable = Message.objects.filter(free, pk=message_id, status=PENDING)
    if due_only:
        claimable = claimable.filter(next_attempt_at__lte=now)
    lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    return bool(claimable.update(leased_until=now + lease))


def message_deliver(*, message_id: int, due_only: bool = False) -> str:
    """Deliver one message: "delivered", "retry" (failed, tried again later), "dead" (failed
    for the last time) or "skipped" (delivered already, dead, not due, or another worker has
    it). Safe to call twice: only one call wins the claim."""
    now = timezone.now()
    if not _claim(message_id, now, due_only=due_only):
        return "skipped"
    message = Message.objects.get(pk=message_id)
    try:
        handlers.handler_for(message.kind)(message)
    except Exception as exc:
        return _failed(message, exc)
    Message.objects.filter(pk=message_id).update(
        status=DELIVERED,
        delivered_at=timezone.now(),
        leased_until=None,
        attempts=F("attempts") + 1,
        last_error="",
    )
    return "delivered"


def _failed(message: Message, exc: Exception) -> str:
    attempts = message.attempts + 1
    error = f"{type(exc).__name__}: {exc}"[:2000]
    logger.warning("outbox message %s (%s) failed, attempt %s: %s", message.pk, message.kind,
                   attempts, error)  # fmt: skip
    if attempts < settings.OUTBOX_MAX_ATTEMPTS:
        Message.objects.filter(pk=message.pk).update(
            attempts=attempts,
            last_error=error,
            leased_until=None,
            next_attempt_at=timezone.now() + backoff(attempts),
        )
        return "retry"
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(
            status=DEAD, attempts=attempts, last_error=error, leased_until=None
        )
        record(
            action="outbox.dead",
            obj=message,
            payload={"kind": message.kind, "key": message.key, "scope": message.scope,
                     "attempts": attempts, "error": error[:500]},
        )  # fmt: skip
    alert_raise(
        kind="outbox_dead",
        message=f"A {message.kind} message ({message.scope or message.key}) could not be "
        f"delivered after {attempts} attempts: {error[:300]}",
    )
    return "dead"


def messages_sweep(*, limit: int = 1000) -> int:
    """Hand every due, undelivered message to a worker again (the broker was down, a worker
    died mid-delivery, or a retry's backoff has passed). Returns how many were sent."""
    now = timezone.now()
    free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    due = Message.objects.filter(free, status=PENDING, next_attempt_at__lte=now)
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    return sum(queueing.send(tasks.deliver_due, pk) for pk in ids)


def message_resend(*, message_id: int, actor: Actor) -> Message:
    """A person sends a dead message again: it is pending once more, with fresh attempts."""
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            raise not_found("No such message.")
        if message.status != DEAD:
            raise ApplicationError(f"This message is {message.status}; only a dead one is re-sent.")
        message.status, message.attempts, message.next_attempt_at = PENDING, 0, timezone.now()
        message.save(update_fields=["status", "attempts", "next_attempt_at"])
        record(
            action="outbox.resent",
            actor=actor,
            obj=message,
            payload={"kind": message.kind, "key": message.key, "scope": message.scope},
        )
        queueing.send_after_commit(tasks.deliver, message.pk)
    return message
