from __future__ import annotations

from celery import shared_task

from reviews.services import leases_expire


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def expire_leases() -> int:
    """Periodic (beat): return tasks whose lease ran out to the queue."""
    return leases_expire()
