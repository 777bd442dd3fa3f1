from __future__ import annotations

from celery import shared_task

from audit import services


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def verify_chain(verification_id: int) -> None:
    services.verification_run(verification_id=verification_id)
