from __future__ import annotations

from celery import shared_task

from audit import services


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def verify_chain(verification_id: int) -> None:
    services.verification_run(verification_id=verification_id)


@shared_task(acks_late=True, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def verify_chain_daily() -> bool:
    """Periodic (beat, daily): verify the whole log, keep the result, alert if it fails."""
    return bool(services.verification_scheduled().ok)


@shared_task(acks_late=True, time_limit=1800, soft_time_limit=1700)
def sign_checkpoint() -> int | None:
    """Periodic (beat): sign a checkpoint when the log has grown (sealing what waits first),
    and raise an alert if events wait too long for the sealer."""
    services.seal_lag_check()
    checkpoint = services.checkpoint_sign()
    return checkpoint.tree_size if checkpoint else None


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def sweep_verifications() -> int:
    """Periodic (beat): send again verifications whose hand-off to the worker was lost."""
    return services.verifications_sweep()
