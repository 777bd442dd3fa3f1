"""Celery tasks of the label loop: thin wrappers over the services, sent after commit."""

from __future__ import annotations

from celery import shared_task
from django.db.models import Exists, OuterRef

# services imports this module too; both are complete by the time either is called.
from learning import services
from learning.models import LabelRecord, Webhook


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def retrain(run_id: int) -> str:
    return services.retraining_execute(run_id=run_id)


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def shadow_score(version_id: int, decision_ids: list[int]) -> int:
    return services.shadow_scores_write(version_id=version_id, decision_ids=decision_ids)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def webhook_batch(model_id: int) -> int:
    return services.webhook_batches_make(model_id=model_id)


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sweep() -> dict:
    """Beat, every minute: batch pending webhook labels (a lost hand-off), re-send queued
    retraining runs, fail lost ones, queue automatic retraining that is due."""
    pending = LabelRecord.objects.filter(model_id=OuterRef("model_id"), webhook_pending=True)
    models = Webhook.objects.filter(Exists(pending), active=True).values_list("model_id", flat=True)
    batches = sum(services.webhook_batches_make(model_id=model_id) for model_id in models)
    return {"webhook_batches": batches, **services.retraining_sweep()}
