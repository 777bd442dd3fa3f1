from __future__ import annotations

from celery import shared_task

# services imports this module too; both are complete by the time either is called.
from outbox import services


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def deliver(message_id: int) -> str:
    """Sent after the commit that wrote the message: deliver it now."""
    return services.message_deliver(message_id=message_id)


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def deliver_due(message_id: int) -> str:
    """Sent by the sweep: deliver it if it is due (a retry waits out its backoff)."""
    return services.message_deliver(message_id=message_id, due_only=True)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def sweep() -> int:
    """Periodic (beat, every minute): hand undelivered messages to workers again."""
    return services.messages_sweep()
