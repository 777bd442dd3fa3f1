"""State changes of the label loop, each in one transaction with its audit event.

labels: a label per human outcome, delivered to the training store; webhooks: the owner's
webhook and its signed batches; retraining: runs that register candidates; evaluation: a
candidate against the champion on the holdout; promotion: the gate; shadow: shadow scores.
"""

from learning.services.labels import deliver_label, label_record
from learning.services.promotion import version_promote_gated
from learning.services.retraining import (
    retraining_execute,
    retraining_if_due,
    retraining_request,
    retraining_sweep,
)
from learning.services.shadow import on_ingested, shadow_scores_write
from learning.services.webhooks import (
    deliver_webhook,
    webhook_batches_make,
    webhook_remove,
    webhook_set,
)

__all__ = [
    "deliver_label",
    "deliver_webhook",
    "label_record",
    "on_ingested",
    "retraining_execute",
    "retraining_if_due",
    "retraining_request",
    "retraining_sweep",
    "shadow_scores_write",
    "version_promote_gated",
    "webhook_batches_make",
    "webhook_remove",
    "webhook_set",
]
