"""State changes of decisions and review tasks. Each runs in one transaction with its audit."""

from reviews.services.ingest import Ingested, decisions_ingest
from reviews.services.queue import (
    gold_mark,
    leases_expire,
    review_submit,
    task_claim_next,
    task_escalate,
    task_release,
    task_renew,
)

__all__ = [
    "Ingested",
    "decisions_ingest",
    "gold_mark",
    "leases_expire",
    "review_submit",
    "task_claim_next",
    "task_escalate",
    "task_release",
    "task_renew",
]
