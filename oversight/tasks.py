from __future__ import annotations

from celery import shared_task

# services imports this module too; both are complete by the time either is called.
from oversight import monitoring, services


@shared_task(acks_late=True, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def run_export(export_id: int) -> None:
    services.export_run(export_id=export_id)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def sweep_exports() -> int:
    """Periodic (beat): send again exports whose hand-off to the worker was lost."""
    return services.exports_sweep()


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=29 * 60)
def evaluate_models() -> int:
    """Periodic (beat): evaluate every active model's alert conditions, drift and breaker."""
    return monitoring.models_evaluate()
